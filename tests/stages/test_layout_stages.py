"""Stages on Cityscapes- and ADE20K-layout trees: check_dataset's index, fully supervised
training, sliding-window inference and evaluation, against hand-written references."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tests.oracles import (
    SPEC_TRAIN_IDS,
    naive_confusion,
    naive_cross_entropy,
    naive_miou,
    naive_train_ids,
)
from tests.stages.conftest import CPU, TINY_PCAA, TINY_TRAIN
from wsss.data.transforms import normalize_image
from wsss.io import load_image, read_json
from wsss.models import build_seg_model
from wsss.models.prediction import multiscale_probs
from wsss.stages.common import DatasetIndex
from wsss.stages.dataset import run_check_dataset
from wsss.stages.seg import (
    run_eval_seg,
    run_infer_seg,
    run_train_seg,
    seg_loss_fn,
    seg_predictor,
)
from wsss.stages.training import load_model

CS_CLASSES = [
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic_light", "traffic_sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
]  # fmt: skip
CS_SPLITS = {"train": "gtFine", "val": "gtFine"}
# PCAA's fully supervised setting at tiny size: SGD, wide scale range, strong jitter
PCAA_TRAIN = {
    **TINY_TRAIN,
    "optimizer": "sgd",
    "lr": 0.01,
    "scale_range": [0.5, 2.0],
    "jitter": 0.5,
}


def _check_cityscapes(root: Path, out: Path, **kwargs: object) -> None:
    params = {
        "dataset": "cityscapes",
        "classes": CS_CLASSES,
        "splits": CS_SPLITS,
        "labels_file": None,
        "check_pixels": True,
        "layout": "cityscapes",
    }
    run_check_dataset(root, out, **(params | kwargs))


# ---------------------------------------------------------------------------------------------
# check_dataset


def test_check_dataset_cityscapes_index(tmp_path: Path, cityscapes_tree) -> None:
    written = cityscapes_tree(tmp_path / "cs")
    _check_cityscapes(tmp_path / "cs", tmp_path / "index.json")
    data = read_json(tmp_path / "index.json")
    assert data["layout"] == "cityscapes" and data["classes"] == CS_CLASSES
    assert data["splits"] == {split: sorted(ids) for split, ids in written.items()}
    for ids in written.values():
        for image_id, label_ids in ids.items():
            present = sorted({SPEC_TRAIN_IDS[v] for v in label_ids.ravel() if v in SPEC_TRAIN_IDS})
            assert data["labels"][image_id] == present, image_id
    index = DatasetIndex(tmp_path / "index.json")
    assert index.num_fg_classes == 19  # no background class: every class is a label entry
    some = "bonn/bonn_000000_000019"
    assert np.flatnonzero(index.labels(some)).tolist() == data["labels"][some]


def test_check_dataset_cityscapes_refuses_an_image_above_max_image_pixels(
    tmp_path: Path, cityscapes_tree
) -> None:
    cityscapes_tree(tmp_path / "cs")
    images = sorted((tmp_path / "cs" / "leftImg8bit").rglob("*.png"))
    sizes = {}
    for image in images:
        with Image.open(image) as img:
            sizes[image] = img.size
    largest = max(w * h for w, h in sizes.values())
    _check_cityscapes(tmp_path / "cs", tmp_path / "index.json", max_image_pixels=largest)
    with pytest.raises(ValueError, match=r"datasets\.cityscapes\.max_image_pixels = ") as caught:
        _check_cityscapes(tmp_path / "cs", tmp_path / "again.json", max_image_pixels=largest - 1)
    (named,) = [p for p in images if f"image {p} is " in str(caught.value)]
    assert sizes[named][0] * sizes[named][1] == largest
    assert not (tmp_path / "again.json").exists()


def test_check_dataset_cityscapes_errors(tmp_path: Path, cityscapes_tree) -> None:
    root = tmp_path / "cs"
    with pytest.raises(FileNotFoundError, match=r"datasets\.cityscapes\.root is not set"):
        _check_cityscapes(None, tmp_path / "index.json")
    with pytest.raises(FileNotFoundError, match=r"leftImg8bit/<split>/<city>/ and gtFine/train"):
        _check_cityscapes(root, tmp_path / "index.json")
    cityscapes_tree(root)
    with pytest.raises(ValueError, match=r"datasets\.cityscapes\.classes must be the 19"):
        _check_cityscapes(root, tmp_path / "index.json", classes=CS_CLASSES[::-1])
    with pytest.raises(ValueError, match=r"datasets\.cityscapes\.labels_file"):
        _check_cityscapes(root, tmp_path / "index.json", labels_file="labels.csv")
    victim = root / "gtFine/val/lindau/lindau_000001_000019_gtFine_labelIds.png"
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(victim)
    with pytest.raises(ValueError, match=r"lindau_000001_000019_gtFine_labelIds\.png is 8x8"):
        _check_cityscapes(root, tmp_path / "index.json")
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=r"lindau_000001_000019_gtFine_labelIds\.png"):
        _check_cityscapes(root, tmp_path / "index.json")
    assert not (tmp_path / "index.json").exists()


def _ade_tree(root: Path) -> dict[str, np.ndarray]:
    """Two training images, one validation image; annotations 0..150."""
    rng = np.random.default_rng(3)
    annotations = {}
    for split, names in {
        "training": ["ADE_train_00000001", "ADE_train_00000002"],
        "validation": ["ADE_val_00000001"],
    }.items():
        for name in names:
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
            rgb = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(root / "images" / split / f"{name}.jpg", quality=95)
            ann = rng.choice(np.array([0, 1, 5, 150], np.uint8), size=(12, 10))
            Image.fromarray(ann, mode="L").save(root / "annotations" / split / f"{name}.png")
            annotations[name] = ann
    return annotations


def _check_ade(root: Path | None, out: Path, **kwargs: object) -> None:
    from wsss.data.ade20k import ADE20K_CLASSES

    params = {
        "dataset": "ade20k",
        "classes": [c.replace(" ", "_") for c in ADE20K_CLASSES],
        "splits": {"training": "annotations", "validation": "annotations"},
        "labels_file": None,
        "check_pixels": True,
        "layout": "ade20k",
    }
    run_check_dataset(root, out, **(params | kwargs))


def test_check_dataset_ade20k_index_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "ADEChallengeData2016"
    with pytest.raises(FileNotFoundError, match=r"datasets\.ade20k\.root is not set.*images/"):
        _check_ade(None, tmp_path / "index.json")
    annotations = _ade_tree(root)
    _check_ade(root, tmp_path / "index.json")
    data = read_json(tmp_path / "index.json")
    assert data["layout"] == "ade20k" and len(data["classes"]) == 150
    assert data["classes"][0] == "wall" and data["classes"][44] == "chest_of_drawers"
    assert data["splits"] == {
        "training": ["ADE_train_00000001", "ADE_train_00000002"],
        "validation": ["ADE_val_00000001"],
    }
    for name, ann in annotations.items():  # annotation k > 0 is class k − 1; 0 is ignored
        assert data["labels"][name] == sorted({int(v) - 1 for v in ann.ravel() if v > 0})
    assert DatasetIndex(tmp_path / "index.json").labels("ADE_val_00000001").shape == (150,)

    bad = annotations["ADE_val_00000001"].copy()
    bad[0, 0] = 151
    victim = root / "annotations/validation/ADE_val_00000001.png"
    Image.fromarray(bad, mode="L").save(victim)
    with pytest.raises(ValueError, match=r"ADE_val_00000001\.png: .*151"):
        _check_ade(root, tmp_path / "other.json")
    with pytest.raises(ValueError, match=r"datasets\.ade20k\.classes must be the 150"):
        _check_ade(root, tmp_path / "other.json", classes=["wall", "building"])
    assert not (tmp_path / "other.json").exists()


# ---------------------------------------------------------------------------------------------
# the PCAA loss through seg_loss_fn


def _naive_focal(logits: torch.Tensor, mask: torch.Tensor, grid: int, gamma: float) -> float:
    """PCAA's focal term by loops: bin labels from class fractions (ignore band (0, 0.01)),
    per-class mean of (1 − p_t)^γ · −log p_t over non-ignored bins, mean over classes."""
    n, k = logits.shape[:2]
    h, w = mask.shape[1:]
    per_class = []
    for c in range(k):
        terms = []
        for b in range(n):
            for by in range(grid):
                for bx in range(grid):
                    block = mask[b, by * h // grid : (by + 1) * h // grid]
                    block = block[:, bx * w // grid : (bx + 1) * w // grid]
                    q = (block == c).double().mean().item()
                    if 0 < q < 0.01:
                        continue
                    p = torch.sigmoid(logits[b, c, by, bx].double()).item()
                    p_t = p if q > 0 else 1 - p
                    terms.append((1 - p_t) ** gamma * -math.log(p_t))
        if terms:
            per_class.append(sum(terms) / len(terms))
    return sum(per_class) / len(per_class)


def test_seg_loss_fn_pcaa_keys_add_the_focal_term() -> None:
    gen = torch.Generator().manual_seed(1)
    outputs = {
        "out": torch.randn(2, 3, 8, 8, generator=gen),
        "aux": torch.randn(2, 3, 8, 8, generator=gen),
        "bin_logits": (torch.randn(2, 3, 2, 2, generator=gen),),
    }
    mask = torch.randint(0, 3, (2, 8, 8), generator=gen)
    mask[0, :3] = 255
    batch = {"image": torch.zeros(2, 3, 8, 8), "mask": mask}

    def model(image):
        return outputs

    loss = {"aux_weight": 0.4, "ohem": None, "cls_weight": 0.5, "focal_gamma": 2.0}
    loss["bin_threshold"] = 0.01
    expected = naive_cross_entropy(outputs["out"], mask)
    expected += 0.4 * naive_cross_entropy(outputs["aux"], mask)
    expected += 0.5 * _naive_focal(outputs["bin_logits"][0], mask, 2, 2.0)
    assert seg_loss_fn(loss)(model, batch).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="cls_weight, focal_gamma and bin_threshold"):
        seg_loss_fn({"aux_weight": 0.4, "ohem": None, "cls_weight": 1.0})


# ---------------------------------------------------------------------------------------------
# inference modes


def _naive_slide_probs(net, image: torch.Tensor, starts: dict, crop: int, flip: bool):
    """Softmax of window-averaged logits at the given window offsets, by hand (plus the
    mirrored pass when ``flip``)."""

    def window_mean(x):
        _, h, w = x.shape
        total, count = torch.zeros(19, h, w), torch.zeros(1, h, w)
        for y in starts["y"]:
            for x0 in starts["x"]:
                with torch.no_grad():
                    logits = net(x[None, :, y : y + crop, x0 : x0 + crop])["out"][0]
                total[:, y : y + crop, x0 : x0 + crop] += logits
                count[:, y : y + crop, x0 : x0 + crop] += 1
        assert (count > 0).all()
        return (total / count).softmax(0)

    probs = window_mean(image)
    if flip:
        probs = (probs + window_mean(image.flip(-1)).flip(-1)) / 2
    return probs


def test_seg_predictor_modes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_seg_model("pcaa", num_classes=19, **TINY_PCAA["net"]).eval()
    image = torch.randn(3, 40, 56)
    whole = seg_predictor(net, 19, scales=[1.0, 0.5], flip=True)(image)
    assert torch.allclose(whole, multiscale_probs(net, image, scales=[1.0, 0.5], flip=True))
    slide = seg_predictor(net, 19, scales=[1.0], flip=True, mode="slide", crop_size=32, stride=24)
    # windows every 24 px, the last moved back to end at the border: y 0, 8; x 0, 24
    expected = _naive_slide_probs(net, image, {"y": [0, 8], "x": [0, 24]}, 32, flip=True)
    assert torch.allclose(slide(image), expected, atol=1e-6)
    with pytest.raises(ValueError, match="needs crop_size and stride"):
        seg_predictor(net, 19, scales=[1.0], flip=False, mode="slide", crop_size=32)
    with pytest.raises(ValueError, match="belong to mode 'slide'"):
        seg_predictor(net, 19, scales=[1.0], flip=False, crop_size=32, stride=24)
    with pytest.raises(ValueError, match="'whole' or 'slide'"):
        seg_predictor(net, 19, scales=[1.0], flip=False, mode="tiles")


# ---------------------------------------------------------------------------------------------
# full supervision on a Cityscapes-layout tree: train → sliding-window inference → evaluation


def test_fully_supervised_pcaa_on_cityscapes_layout(tmp_path: Path, cityscapes_tree) -> None:
    root, index_path = tmp_path / "cs", tmp_path / "index.json"
    written = cityscapes_tree(root)
    _check_cityscapes(root, index_path)
    index = DatasetIndex(index_path)

    # the training samples carry the trainIds of the gtFine labelIds
    dataset = index.files(root, "train", "gtFine").dataset(index.ids("train"))
    for i, image_id in enumerate(index.ids("train")):
        item = dataset[i]
        assert item["id"] == image_id
        assert np.array_equal(item["mask"], naive_train_ids(written["train"][image_id]))

    ckpt = tmp_path / "seg.pt"
    run_train_seg(
        index_path,
        root,
        ckpt,
        tmp_path / "loss.csv",
        split="train",
        mask_dir="gtFine",
        model_name="pcaa",
        model=TINY_PCAA,
        train=PCAA_TRAIN,
        seed=0,
        device=CPU,
    )
    log = pd.read_csv(tmp_path / "loss.csv")
    assert log["step"].iloc[-1] == PCAA_TRAIN["steps"] and np.isfinite(log["loss"]).all()

    pred_dir = tmp_path / "pred"
    run_infer_seg(
        index_path,
        root,
        ckpt,
        pred_dir,
        split="val",
        scales=[1.0],
        flip=False,
        device=CPU,
        mode="slide",
        crop_size=32,
        stride=24,
    )
    net = load_model(ckpt, build_seg_model, CPU)
    total = np.zeros((19, 19), dtype=np.int64)
    agree = checked = 0
    for image_id, label_ids in written["val"].items():
        city, name = image_id.split("/")
        image_file = root / "leftImg8bit/val" / city / f"{name}_leftImg8bit.png"
        with Image.open(pred_dir / city / f"{name}.png") as img:
            assert img.mode == "P" and img.size == (56, 40)
            assert img.getpalette()[:3] == [128, 64, 128]  # road in Cityscapes colours
            pred = np.array(img)
        image = normalize_image(load_image(image_file))
        probs = _naive_slide_probs(net, image, {"y": [0, 8], "x": [0, 24]}, 32, flip=False)
        top2 = probs.topk(2, dim=0).values
        clear = (top2[0] - top2[1] > 1e-6).numpy()  # no near-ties
        agree += int((pred == probs.argmax(0).numpy())[clear].sum())
        checked += int(clear.sum())
        total += naive_confusion(pred, naive_train_ids(label_ids), 19)
    assert checked > 0.9 * 2 * 40 * 56 and agree == checked

    metrics = tmp_path / "seg.csv"
    run_eval_seg(
        index_path,
        root,
        pred_dir,
        metrics,
        dataset="cityscapes",
        experiment="oracle_pcaa",
        split="val",
        gt_dir="gtFine",
    )
    (row,) = pd.read_csv(metrics).to_dict("records")
    assert row["miou"] == pytest.approx(naive_miou(total), abs=2e-6)
    assert row["pixel_acc"] == pytest.approx(np.trace(total) / total.sum(), abs=2e-6)
    assert {f"iou_{c}" for c in CS_CLASSES} <= set(row)
    manifest = read_json(pred_dir / "manifest.json")
    assert (manifest["mode"], manifest["crop_size"], manifest["stride"]) == ("slide", 32, 24)


def test_whole_image_inference_resizes_pcaa_inputs_back(tmp_path: Path) -> None:
    """PCAA resizes inputs up to a multiple of 32 inside; predictions keep the image size."""
    torch.manual_seed(0)
    net = build_seg_model("pcaa", num_classes=5, **TINY_PCAA["net"]).eval()
    image = torch.randn(3, 37, 45)
    probs = seg_predictor(net, 5, scales=[1.0], flip=False)(image)
    assert probs.shape == (5, 37, 45)
    aligned = F.interpolate(image[None], size=(64, 64), mode="bilinear", align_corners=False)
    with torch.no_grad():
        logits = net.head(net.backbone.forward_stages(aligned)["layer4"])[0]
    back = F.interpolate(logits, size=(37, 45), mode="bilinear", align_corners=False)
    assert torch.allclose(probs, back.softmax(1)[0], atol=1e-5)
