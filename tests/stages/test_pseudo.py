"""make_pseudo_labels (threshold map without CRF iterations, process pool, atomic output) and
eval_pseudo_labels (unlabelled pixels counted as background) against naive references."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import IRN_CRF_KERNELS
from tests.oracles import naive_cam_label, naive_confusion, naive_ious, naive_miou
from tests.stages.conftest import CLASSES4, cam_images, close, write_tree
from wsss.data.voc import voc_palette
from wsss.io import save_label_png
from wsss.stages.pseudo import run_eval_pseudo_labels, run_make_pseudo_labels

CRF_NO_ITER = {
    "labels": {"unary": "labels", "gt_prob": 0.7, **IRN_CRF_KERNELS, "iterations": 0},
    "softmax": {"unary": "softmax", **IRN_CRF_KERNELS, "iterations": 0},
}


@pytest.mark.parametrize("unary", sorted(CRF_NO_ITER))
def test_make_pseudo_labels_without_crf_iterations_is_the_threshold_map(
    tmp_path: Path, unary: str
) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    images = cam_images(1, with_rgb=True)
    write_tree(root, index_path, classes=CLASSES4, split="train", images=images)
    out = tmp_path / "parent" / "pseudo"
    run_make_pseudo_labels(
        index_path,
        root,
        root / "cams",
        out,
        split="train",
        bg_threshold=0.4,
        crf=CRF_NO_ITER[unary],
        ignore_disagreement=False,
    )
    assert sorted(os.listdir(out)) == sorted([f"{i}.png" for i in images] + ["manifest.json"])
    assert os.listdir(out.parent) == ["pseudo"]
    palette = voc_palette()
    for image_id, spec in images.items():
        with Image.open(out / f"{image_id}.png") as img:
            assert img.mode == "P"
            assert np.array_equal(np.array(img.getpalette()[:9]).reshape(3, 3), palette[:3])
            label = np.array(img)
        assert np.array_equal(label, naive_cam_label(spec["cams"], spec["keys"], 0.4))


def test_make_pseudo_labels_parallel_equals_serial(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    write_tree(
        root, index_path, classes=CLASSES4, split="train", images=cam_images(2, with_rgb=True)
    )
    crf = {"unary": "softmax", **IRN_CRF_KERNELS, "iterations": 2}
    outs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}" / "pseudo"
        run_make_pseudo_labels(
            index_path,
            root,
            root / "cams",
            out,
            split="train",
            bg_threshold=0.4,
            crf=crf,
            ignore_disagreement=True,
            processes=processes,
        )
        assert os.listdir(out.parent) == ["pseudo"]
        outs[processes] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert len(outs[1]) == 4
    assert outs[1] == outs[2]


def test_make_pseudo_labels_replaces_old_output(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    images = cam_images(3, with_rgb=True)
    write_tree(root, index_path, classes=CLASSES4, split="train", images=images)
    out = tmp_path / "parent" / "pseudo"
    out.mkdir(parents=True)
    (out / "stale.png").write_bytes(b"old")
    run_make_pseudo_labels(
        index_path,
        root,
        root / "cams",
        out,
        split="train",
        bg_threshold=0.4,
        crf=CRF_NO_ITER["labels"],
        ignore_disagreement=False,
    )
    assert not (out / "stale.png").exists()
    assert os.listdir(out.parent) == ["pseudo"]


def test_make_pseudo_labels_size_mismatch_names_the_file(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    images = cam_images(1, with_rgb=True)
    images["img_b"]["cams"] = images["img_b"]["cams"][:, :, :-1]  # a stale archive
    write_tree(root, index_path, classes=CLASSES4, split="train", images=images)
    with pytest.raises(ValueError, match="img_b"):
        run_make_pseudo_labels(
            index_path,
            root,
            root / "cams",
            tmp_path / "out",
            split="train",
            bg_threshold=0.4,
            crf=CRF_NO_ITER["labels"],
            ignore_disagreement=False,
        )


def test_eval_pseudo_labels_counts_ignore_as_background(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    rng = np.random.default_rng(4)
    images, preds = {}, {}
    for image_id, (h, w) in [("p1", (5, 6)), ("p2", (7, 4))]:
        gt = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=(h, w), p=[0.4, 0.3, 0.2, 0.1])
        pred = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=(h, w), p=[0.3, 0.3, 0.2, 0.2])
        images[image_id] = {"gt": gt, "keys": np.array([0, 1])}
        preds[image_id] = pred
        save_label_png(tmp_path / "pseudo" / f"{image_id}.png", pred, voc_palette())
    write_tree(root, index_path, classes=CLASSES4, split="train", images=images)
    out = tmp_path / "pseudo.csv"
    run_eval_pseudo_labels(
        index_path,
        root,
        tmp_path / "pseudo",
        out,
        dataset="toy",
        experiment="exp",
        split="train",
        gt_dir="SegmentationClass",
        bg_threshold=0.4,
    )
    conf = np.zeros((4, 4), dtype=np.int64)
    ignored = np.zeros((4, 4), dtype=np.int64)  # the wrong convention: drop 255 predictions
    for image_id, spec in images.items():
        pred = preds[image_id].astype(np.int64)
        conf += naive_confusion(np.where(pred == 255, 0, pred), spec["gt"], 4)
        keep = pred != 255
        ignored += naive_confusion(pred[keep], spec["gt"][keep], 4)
    (row,) = pd.read_csv(out).to_dict("records")
    assert row["stage"] == "pseudo" and row["threshold"] == "fixed"
    assert row["bg_threshold"] == pytest.approx(0.4)
    assert close(row["miou"], naive_miou(conf))
    assert not close(row["miou"], naive_miou(ignored))
    assert close(row["pixel_acc"], np.trace(conf) / conf.sum())
    for name, iou in zip(CLASSES4, naive_ious(conf), strict=True):
        assert close(row[f"iou_{name}"], iou)


def test_a_bad_crf_preset_fails_before_any_image(tmp_path: Path) -> None:
    # the index does not even exist: the preset is parsed first, not per image in the pool
    bad = {**CRF_NO_ITER["softmax"], "bilateral": {"sxy": 50, "srgb": 0, "compat": 10}}
    with pytest.raises(ValueError) as caught:
        run_make_pseudo_labels(
            tmp_path / "absent.json",
            tmp_path,
            tmp_path / "cams",
            tmp_path / "pseudo",
            split="train",
            bg_threshold=0.4,
            crf=bad,
            ignore_disagreement=False,
        )
    assert str(caught.value) == "crf: CRF parameter 'bilateral.srgb' must be > 0, got 0"
    assert not (tmp_path / "pseudo").exists()


@pytest.mark.parametrize("crf_labels, num_labels", [("image", None), ("all", len(CLASSES4))])
def test_make_pseudo_labels_crf_label_set(tmp_path: Path, monkeypatch, crf_labels, num_labels):
    """``all`` (SMAF's release) runs the CRF over every class of the dataset, ``image`` over
    the image's classes; with no iteration both give the threshold map."""
    import wsss.stages.pseudo as pseudo

    seen = []
    real = pseudo.crf_pseudo_label
    monkeypatch.setattr(
        pseudo, "crf_pseudo_label", lambda *a, **k: seen.append(k["num_labels"]) or real(*a, **k)
    )
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    images = cam_images(1, with_rgb=True)
    write_tree(root, index_path, classes=CLASSES4, split="train", images=images)
    out = tmp_path / "pseudo"
    run_make_pseudo_labels(
        index_path,
        root,
        root / "cams",
        out,
        split="train",
        bg_threshold=0.4,
        crf=CRF_NO_ITER["labels"],
        ignore_disagreement=False,
        crf_labels=crf_labels,
    )
    assert seen == [num_labels] * len(images)
    for image_id, spec in images.items():
        with Image.open(out / f"{image_id}.png") as img:
            label = np.array(img)
        assert np.array_equal(label, naive_cam_label(spec["cams"], spec["keys"], 0.4))


def test_make_pseudo_labels_rejects_an_unknown_label_set(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"crf_labels must be one of \('image', 'all'\)"):
        run_make_pseudo_labels(
            tmp_path / "index.json",
            tmp_path,
            tmp_path / "cams",
            tmp_path / "out",
            split="train",
            bg_threshold=0.4,
            crf=CRF_NO_ITER["labels"],
            ignore_disagreement=False,
            crf_labels="voc",
        )
    assert not (tmp_path / "out").exists()
