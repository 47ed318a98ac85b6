"""The CAM stages: train_cam (plain, SEAM and CPN) and infer_cam on a generated tree, and
eval_cam's fixed and oracle rows against naive references on a hand-made tree."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tests.oracles import (
    naive_bilinear,
    naive_cam_label,
    naive_confusion,
    naive_ious,
    naive_miou,
    naive_release_cams,
)
from tests.stages.conftest import (
    CLASSES4,
    CPU,
    SYNTH_CLASSES,
    TINY_RESNET_W4,
    TINY_RESNET_W4_OS16,
    TINY_TRAIN,
    assert_checkpoint,
    assert_loss_log,
    cam_images,
    close,
    mask_fg,
    split_ids,
    write_tree,
)
from wsss.io import load_cam_npz, load_checkpoint
from wsss.models import build_cam_model
from wsss.stages.cam import run_eval_cam, run_infer_cam, run_train_cam

# ---------------------------------------------------------------------------------------------
# eval_cam


def test_eval_cam_fixed_and_oracle_rows(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    images = cam_images(0, with_rgb=False)
    write_tree(root, index_path, classes=CLASSES4, split="val", images=images)
    metrics, curve_path = tmp_path / "out" / "cam.csv", tmp_path / "out" / "curve.csv"
    bg = 0.35
    run_eval_cam(
        index_path,
        root,
        root / "cams",
        metrics,
        curve_path,
        dataset="toy",
        experiment="exp",
        split="val",
        gt_dir="SegmentationClass",
        bg_threshold=bg,
        sweep={"start": 0.1, "stop": 0.9, "step": 0.1},
    )

    def conf_at(t: float) -> np.ndarray:
        total = np.zeros((4, 4), dtype=np.int64)
        for spec in images.values():
            total += naive_confusion(naive_cam_label(spec["cams"], spec["keys"], t), spec["gt"], 4)
        return total

    grid = [round(0.1 * k, 10) for k in range(1, 10)]
    naive_curve = [naive_miou(conf_at(t)) for t in grid]
    rows = pd.read_csv(metrics)
    assert list(rows["threshold"]) == ["fixed", "oracle"]
    assert set(rows["stage"]) == {"cam"} and set(rows["experiment"]) == {"exp"}
    fixed, oracle = rows.iloc[0], rows.iloc[1]
    conf = conf_at(bg)
    assert close(fixed["miou"], naive_miou(conf))
    assert close(fixed["pixel_acc"], np.trace(conf) / conf.sum())
    for name, iou in zip(CLASSES4, naive_ious(conf), strict=True):
        assert close(fixed[f"iou_{name}"], iou)
    assert fixed["bg_threshold"] == pytest.approx(bg)

    best = max(naive_curve)
    assert naive_curve.count(best) == 1  # the data make the oracle unambiguous
    assert oracle["bg_threshold"] == pytest.approx(grid[naive_curve.index(best)])
    assert close(oracle["miou"], best)
    assert best > naive_curve[0] and best > naive_curve[-1]  # an interior optimum

    curve = pd.read_csv(curve_path)
    assert list(curve.columns) == ["bg_threshold", "miou"]
    assert len(curve) == len(grid)
    assert np.allclose(curve["bg_threshold"], grid)
    assert np.allclose(curve["miou"], naive_curve, atol=2e-6)


def test_eval_cam_size_mismatch_names_the_file(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    images = cam_images(0, with_rgb=False)
    images["img_b"]["cams"] = images["img_b"]["cams"][:, :, :-1]  # a stale archive
    write_tree(root, index_path, classes=CLASSES4, split="val", images=images)
    with pytest.raises(ValueError, match="img_b"):
        run_eval_cam(
            index_path,
            root,
            root / "cams",
            tmp_path / "m.csv",
            tmp_path / "c.csv",
            dataset="toy",
            experiment="exp",
            split="val",
            gt_dir="SegmentationClass",
            bg_threshold=0.3,
            sweep={"start": 0.1, "stop": 0.9, "step": 0.1},
        )


# ---------------------------------------------------------------------------------------------
# Training / inference smoke tests


@pytest.fixture(scope="module")
def cam_model(
    synth_root: Path, synth_index: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("cam")
    run_train_cam(
        synth_index,
        synth_root,
        out / "cam.pt",
        out / "loss.csv",
        split="train_aug",
        model={"net": {"backbone": TINY_RESNET_W4_OS16, "detach_until": None}, "pretrained": None},
        train=TINY_TRAIN,
        seed=0,
        device=CPU,
    )
    return out / "cam.pt"


def test_train_cam_smoke(cam_model: Path) -> None:
    model = assert_checkpoint(cam_model, build_cam_model, SYNTH_CLASSES)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, len(SYNTH_CLASSES) - 1)
    assert_loss_log(cam_model.parent / "loss.csv", TINY_TRAIN["steps"])


def test_infer_cam_writes_present_classes(
    synth_root: Path, synth_index: Path, cam_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "parent" / "cams"
    run_infer_cam(
        synth_index,
        synth_root,
        cam_model,
        out,
        split="val",
        scales=[1.0, 0.5],
        flip=True,
        device=CPU,
    )
    ids = split_ids(synth_root, "val")
    assert sorted(os.listdir(out)) == sorted([f"{i}.npz" for i in ids] + ["manifest.json"])
    assert os.listdir(out.parent) == ["cams"]
    for image_id in ids:
        cam = load_cam_npz(out / f"{image_id}.npz")
        assert cam["keys"].tolist() == mask_fg(synth_root, image_id)
        with Image.open(synth_root / "JPEGImages" / f"{image_id}.jpg") as img:
            w, h = img.size
        assert cam["high_res"].shape == (len(cam["keys"]), h, w)
        assert cam["high_res"].min() >= 0 and cam["high_res"].max() <= 1


PCM_CAMS = {
    "seam": {
        "model": {
            "net": {
                "backbone": TINY_RESNET_W4,
                "feature_stages": ["layer2", "layer3", "layer4"],
                "embed_channels": [4, 4, 8],
            },
            "pretrained": None,
        },
        "loss": {"view_scale": 0.5},
    },
    "cpn": {  # on a narrow ResNet-38, the CPN backbone
        "model": {
            "net": {
                "backbone": {"name": "resnet38", "width": 0.0625, "frozen_bn": False},
                "embed_channels": [4, 4, 8],
                "prcm_layout": "transpose",
            },
            "pretrained": None,
        },
        "loss": {
            "pairs": {
                "strategy": "superpixel",
                "n_segments": 6,
                "compactness": 10,
                "cell_sizes": [16],
            }
        },
    },
}


@pytest.mark.parametrize("method", sorted(PCM_CAMS))
def test_train_and_infer_pcm_cams(
    method: str, synth_root: Path, synth_index: Path, tmp_path: Path
) -> None:
    spec = PCM_CAMS[method]
    run_train_cam(
        synth_index,
        synth_root,
        tmp_path / "cam.pt",
        tmp_path / "loss.csv",
        split="train_aug",
        model=spec["model"],
        train=TINY_TRAIN,
        seed=0,
        device=CPU,
        method=method,
        loss=spec["loss"],
    )
    model = assert_checkpoint(tmp_path / "cam.pt", build_cam_model, SYNTH_CLASSES)
    assert load_checkpoint(tmp_path / "cam.pt")["model_name"] == method
    assert (model.f10 is not None) == (method == "cpn")  # PRCM only in CPN
    assert_loss_log(tmp_path / "loss.csv", TINY_TRAIN["steps"])
    run_infer_cam(
        synth_index,
        synth_root,
        tmp_path / "cam.pt",
        tmp_path / "maps",
        split="val",
        scales=[1.0, 0.5],
        flip=True,
        device=CPU,
        normalization="minmax",
        procedure="release",
    )
    model.eval()
    for image_id in split_ids(synth_root, "val"):
        cam = load_cam_npz(tmp_path / "maps" / f"{image_id}.npz")
        assert cam["keys"].tolist() == mask_fg(synth_root, image_id)
        # SEAM's/CPN's released inference: PIL bicubic scales, input-size maps, then H×W
        image = np.asarray(Image.open(synth_root / "JPEGImages" / f"{image_id}.jpg").convert("RGB"))
        fg = naive_release_cams(model, image, [1.0, 0.5], True, via_input_size=True)
        fg = np.maximum(fg[cam["keys"]], 0)
        lo, hi = fg.min((1, 2), keepdims=True), fg.max((1, 2), keepdims=True)
        want = np.maximum((fg - lo - 1e-5) / (hi - lo + 1e-5), 0)
        np.testing.assert_allclose(cam["high_res"], want, atol=1e-4)
        # min–max normalised per class: from 0 (the minimum pixel) to ≤ 1 (the maximum)
        per_class = cam["high_res"].reshape(len(cam["keys"]), -1)
        np.testing.assert_allclose(per_class.min(1), 0, atol=1e-6)
        assert np.all(per_class.max(1) <= 1)  # (max − min − ε)/(max − min + ε)


def test_train_cam_needs_the_method_loss(synth_root: Path, synth_index: Path, tmp_path: Path):
    with pytest.raises(ValueError, match=r"cam_methods\.cpn\.loss"):
        run_train_cam(
            synth_index,
            synth_root,
            tmp_path / "cam.pt",
            tmp_path / "loss.csv",
            split="train_aug",
            model=PCM_CAMS["cpn"]["model"],
            train=TINY_TRAIN,
            seed=0,
            device=CPU,
            method="cpn",
        )
    with pytest.raises(ValueError, match="unknown CAM method"):
        run_train_cam(
            synth_index,
            synth_root,
            tmp_path / "a",
            tmp_path / "b",
            split="train_aug",
            model={},
            train=TINY_TRAIN,
            seed=0,
            device=CPU,
            method="nope",
        )


class _FixedMaps(torch.nn.Module):
    """A stand-in SEAM network: stride-4 average pools of the input as (cam, cam_rv)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = torch.nn.functional.avg_pool2d(x, 4, ceil_mode=True)
        return pooled, pooled.flip(1) * 2


def test_seam_loss_takes_every_term_at_each_views_input_size(monkeypatch) -> None:
    """SEAM's release upsamples (cam, cam_rv) of each view to that view's input size
    (bilinear, align_corners=True) before the losses: view 1 at the crop, view 2 at the
    ×view_scale copy."""
    from wsss.training import cam_steps

    seen = []
    monkeypatch.setattr(cam_steps, "seam_loss", lambda *maps: seen.append(maps) or {})
    x = torch.rand(2, 3, 20, 20, dtype=torch.float64)
    cam_steps.seam_step_loss(_FixedMaps(), {"image": x, "labels": torch.ones(2, 2)}, view_scale=0.3)
    ((cam1, rv1, cam2, rv2, _labels),) = seen
    small = naive_bilinear(x.numpy(), (6, 6), align_corners=True)

    def pool4(v):  # ceil-mode 4×4 average pools, written out
        h, w = v.shape[-2:]
        rows = [
            [v[..., i : i + 4, j : j + 4].mean((-2, -1)) for j in range(0, w, 4)]
            for i in range(0, h, 4)
        ]
        return np.stack([np.stack(r, -1) for r in rows], -2)

    for got, view, flip in [(cam1, x.numpy(), False), (rv1, x.numpy(), True)] + [
        (cam2, small, False),
        (rv2, small, True),
    ]:
        grid = 2 * pool4(view)[:, ::-1] if flip else pool4(view)
        want = naive_bilinear(grid, view.shape[-2:], align_corners=True)
        assert got.shape == want.shape
        assert np.allclose(got.numpy(), want, atol=1e-12)


def test_infer_cam_rejects_an_unknown_procedure(
    synth_root: Path, synth_index: Path, cam_model: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"infer\.procedure must be one of \('irn', 'release'\)"):
        run_infer_cam(
            synth_index,
            synth_root,
            cam_model,
            tmp_path / "m",
            split="val",
            scales=[1.0],
            flip=False,
            device=CPU,
            procedure="bicubic",
        )
    assert not (tmp_path / "m").exists()
