"""Tests for the stage orchestrators (wsss.stages.*) on tiny trees, against naive references."""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from wsss.data import synthetic
from wsss.data.voc import voc_palette
from wsss.io import (
    load_cam_npz,
    load_checkpoint,
    read_json,
    save_cam_npz,
    save_label_png,
)
from wsss.models import build_cam_model, build_seg_model
from wsss.stages.cam import run_eval_cam, run_infer_cam, run_train_cam
from wsss.stages.common import DatasetIndex, atomic_dir
from wsss.stages.dataset import run_check_dataset
from wsss.stages.pseudo import run_eval_pseudo_labels, run_make_pseudo_labels
from wsss.stages.report import run_collect_metrics
from wsss.stages.seg import run_eval_seg, run_infer_seg, run_train_seg, seg_loss_fn
from wsss.stages.training import load_model
from wsss.utils.runtime import one_line_errors

CPU = torch.device("cpu")
SPLITS = {
    "train_aug": "SegmentationClassAug",
    "train": "SegmentationClass",
    "val": "SegmentationClass",
}
SYNTH_CLASSES = ["background", *synthetic.SHAPE_FAMILIES]


# ---------------------------------------------------------------------------------------------
# Naive references


def _naive_label(cams: np.ndarray, keys: np.ndarray, t: float) -> np.ndarray:
    """Per pixel: argmax of [t, cams...] (first maximum wins), plane i → keys[i-1] + 1."""
    _, h, w = cams.shape
    out = np.zeros((h, w), dtype=np.int64)
    for y in range(h):
        for x in range(w):
            scores = [t] + [float(cams[k, y, x]) for k in range(len(keys))]
            best = max(range(len(scores)), key=lambda i: (scores[i], -i))
            out[y, x] = 0 if best == 0 else int(keys[best - 1]) + 1
    return out


def _naive_conf(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, g in zip(pred.ravel().tolist(), gt.ravel().tolist(), strict=True):
        if g != 255:
            conf[g, p] += 1
    return conf


def _naive_ious(conf: np.ndarray) -> list[float]:
    out = []
    for c in range(conf.shape[0]):
        tp = conf[c, c]
        union = conf[c, :].sum() + conf[:, c].sum() - tp
        out.append(tp / union if union else math.nan)
    return out


def _naive_miou(conf: np.ndarray) -> float:
    vals = [v for v in _naive_ious(conf) if not math.isnan(v)]
    return sum(vals) / len(vals)


def _close(a: float, b: float, tol: float = 2e-6) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img)


# ---------------------------------------------------------------------------------------------
# Tiny trees


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated VOC tree (6 train_aug, 3 train, 3 val); tests must not modify it."""
    root = tmp_path_factory.mktemp("synth") / "voc"
    synthetic.generate(
        root,
        seed=0,
        num_train_aug=6,
        num_train=3,
        num_val=3,
        image_size_range=(48, 64),
        scale_range=(0.3, 0.8),
    )
    return root


@pytest.fixture(scope="module")
def synth_index(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index") / "index.json"
    run_check_dataset(
        synth_root,
        path,
        dataset="synth",
        classes=SYNTH_CLASSES,
        splits=SPLITS,
        labels_file="cls_labels.csv",
        check_pixels=True,
    )
    return path


def _split_ids(root: Path, split: str) -> list[str]:
    text = (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _mask_fg(root: Path, image_id: str) -> list[int]:
    """0-based foreground class indices present in the image's SegmentationClassAug mask."""
    values = np.unique(_read_png(root / "SegmentationClassAug" / f"{image_id}.png"))
    return sorted(int(v) - 1 for v in values if 1 <= v < len(SYNTH_CLASSES))


def _write_tree(
    root: Path, index_path: Path, *, classes: list[str], split: str, images: dict[str, dict]
) -> None:
    """Hand-made tree: JPEG (when given), GT palette PNG, CAM npz under root/cams, and an index."""
    for image_id, spec in images.items():
        if "image" in spec:
            (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
            Image.fromarray(spec["image"]).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        save_label_png(root / "SegmentationClass" / f"{image_id}.png", spec["gt"], voc_palette())
        if "cams" in spec:
            save_cam_npz(
                root / "cams" / f"{image_id}.npz", keys=spec["keys"], high_res=spec["cams"]
            )
    labels = {}
    for image_id, spec in images.items():
        vec = np.zeros(len(classes) - 1, dtype=np.float32)
        vec[np.asarray(spec.get("keys", []), dtype=np.int64)] = 1
        labels[image_id] = vec
    DatasetIndex.write(index_path, classes=classes, splits={split: list(images)}, labels=labels)


def _cam_images(seed: int, *, with_rgb: bool) -> dict[str, dict]:
    """Three tiny images with 2, 1 and 0 present classes; CAMs correlated with the GT."""
    rng = np.random.default_rng(seed)
    specs = {}
    for image_id, (h, w), keys in [
        ("img_a", (6, 7), [0, 2]),
        ("img_b", (5, 9), [1]),
        ("img_c", (4, 4), []),
    ]:
        keys = np.array(keys, dtype=np.int64)
        choices = np.array([0, *(keys + 1)], dtype=np.uint8)
        gt = rng.choice(choices, size=(h, w))
        gt[rng.random((h, w)) < 0.15] = 255
        cams = (
            np.stack([0.55 * (gt == k + 1) + 0.45 * rng.random((h, w)) for k in keys])
            if len(keys)
            else np.zeros((0, h, w))
        )
        spec = {"gt": gt, "keys": keys, "cams": cams.astype(np.float32)}
        if with_rgb:
            spec["image"] = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        specs[image_id] = spec
    return specs


# ---------------------------------------------------------------------------------------------
# check_dataset


@pytest.mark.parametrize("labels_file", [None, "cls_labels.csv"])
def test_check_dataset_writes_index(
    synth_root: Path, tmp_path: Path, labels_file: str | None
) -> None:
    out = tmp_path / "index.json"
    run_check_dataset(
        synth_root,
        out,
        dataset="synth",
        classes=SYNTH_CLASSES,
        splits=SPLITS,
        labels_file=labels_file,
        check_pixels=True,
    )
    data = read_json(out)
    assert data["classes"] == SYNTH_CLASSES
    assert data["splits"] == {s: _split_ids(synth_root, s) for s in SPLITS}
    all_ids = set(_split_ids(synth_root, "train_aug")) | set(_split_ids(synth_root, "val"))
    assert len(all_ids) == 9
    assert data["labels"] == {i: _mask_fg(synth_root, i) for i in sorted(all_ids)}
    index = DatasetIndex(out)
    some = sorted(all_ids)[0]
    expected = np.zeros(len(SYNTH_CLASSES) - 1, np.float32)
    expected[_mask_fg(synth_root, some)] = 1
    assert np.array_equal(index.labels(some), expected)


@pytest.mark.parametrize("root", [None, "does/not/exist"])
def test_check_dataset_missing_root(tmp_path: Path, root: str | None) -> None:
    root = None if root is None else tmp_path / root
    with pytest.raises(FileNotFoundError, match=r"datasets\.voc\.root"):
        run_check_dataset(
            root,
            tmp_path / "index.json",
            dataset="voc",
            classes=SYNTH_CLASSES,
            splits=SPLITS,
            labels_file=None,
            check_pixels=False,
        )
    assert not (tmp_path / "index.json").exists()


def test_check_dataset_missing_image_is_named(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    with open(root / "ImageSets" / "Segmentation" / "val.txt", "a") as handle:
        handle.write("ghost_000042\n")
    with pytest.raises(FileNotFoundError, match=r"ghost_000042\.jpg"):
        run_check_dataset(
            root,
            tmp_path / "index.json",
            dataset="synth",
            classes=SYNTH_CLASSES,
            splits=SPLITS,
            labels_file=None,
            check_pixels=False,
        )
    assert not (tmp_path / "index.json").exists()


def test_check_dataset_missing_mask_is_named(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    victim = _split_ids(root, "val")[1]
    (root / "SegmentationClass" / f"{victim}.png").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{victim}\.png"):
        run_check_dataset(
            root,
            tmp_path / "index.json",
            dataset="synth",
            classes=SYNTH_CLASSES,
            splits=SPLITS,
            labels_file=None,
            check_pixels=False,
        )


# ---------------------------------------------------------------------------------------------
# eval_cam

CLASSES4 = ["background", "a", "b", "c"]


def test_eval_cam_fixed_and_oracle_rows(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    images = _cam_images(0, with_rgb=False)
    _write_tree(root, index_path, classes=CLASSES4, split="val", images=images)
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
            total += _naive_conf(_naive_label(spec["cams"], spec["keys"], t), spec["gt"], 4)
        return total

    grid = [round(0.1 * k, 10) for k in range(1, 10)]
    naive_curve = [_naive_miou(conf_at(t)) for t in grid]
    rows = pd.read_csv(metrics)
    assert list(rows["threshold"]) == ["fixed", "oracle"]
    assert set(rows["stage"]) == {"cam"} and set(rows["experiment"]) == {"exp"}
    fixed, oracle = rows.iloc[0], rows.iloc[1]
    conf = conf_at(bg)
    assert _close(fixed["miou"], _naive_miou(conf))
    assert _close(fixed["pixel_acc"], np.trace(conf) / conf.sum())
    for name, iou in zip(CLASSES4, _naive_ious(conf), strict=True):
        assert _close(fixed[f"iou_{name}"], iou)
    assert fixed["bg_threshold"] == pytest.approx(bg)

    best = max(naive_curve)
    assert naive_curve.count(best) == 1  # the data make the oracle unambiguous
    assert oracle["bg_threshold"] == pytest.approx(grid[naive_curve.index(best)])
    assert _close(oracle["miou"], best)
    assert best > naive_curve[0] and best > naive_curve[-1]  # an interior optimum

    curve = pd.read_csv(curve_path)
    assert list(curve.columns) == ["bg_threshold", "miou"]
    assert len(curve) == len(grid)
    assert np.allclose(curve["bg_threshold"], grid)
    assert np.allclose(curve["miou"], naive_curve, atol=2e-6)


def test_eval_cam_size_mismatch_names_the_file(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    images = _cam_images(0, with_rgb=False)
    images["img_b"]["cams"] = images["img_b"]["cams"][:, :, :-1]  # a stale archive
    _write_tree(root, index_path, classes=CLASSES4, split="val", images=images)
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
# make_pseudo_labels / eval_pseudo_labels

_KERNELS = {"gaussian": {"sxy": 3, "compat": 3}, "bilateral": {"sxy": 50, "srgb": 5, "compat": 10}}
CRF_NO_ITER = {
    "labels": {"unary": "labels", "gt_prob": 0.7, **_KERNELS, "iterations": 0},
    "softmax": {"unary": "softmax", **_KERNELS, "iterations": 0},
}


@pytest.mark.parametrize("unary", sorted(CRF_NO_ITER))
def test_make_pseudo_labels_without_crf_iterations_is_the_threshold_map(
    tmp_path: Path, unary: str
) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    images = _cam_images(1, with_rgb=True)
    _write_tree(root, index_path, classes=CLASSES4, split="train", images=images)
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
        assert np.array_equal(label, _naive_label(spec["cams"], spec["keys"], 0.4))


def test_make_pseudo_labels_parallel_equals_serial(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    _write_tree(
        root, index_path, classes=CLASSES4, split="train", images=_cam_images(2, with_rgb=True)
    )
    crf = {"unary": "softmax", **_KERNELS, "iterations": 2}
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
    images = _cam_images(3, with_rgb=True)
    _write_tree(root, index_path, classes=CLASSES4, split="train", images=images)
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
    images = _cam_images(1, with_rgb=True)
    images["img_b"]["cams"] = images["img_b"]["cams"][:, :, :-1]  # a stale archive
    _write_tree(root, index_path, classes=CLASSES4, split="train", images=images)
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
    _write_tree(root, index_path, classes=CLASSES4, split="train", images=images)
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
        conf += _naive_conf(np.where(pred == 255, 0, pred), spec["gt"], 4)
        keep = pred != 255
        ignored += _naive_conf(pred[keep], spec["gt"][keep], 4)
    (row,) = pd.read_csv(out).to_dict("records")
    assert row["stage"] == "pseudo" and row["threshold"] == "fixed"
    assert row["bg_threshold"] == pytest.approx(0.4)
    assert _close(row["miou"], _naive_miou(conf))
    assert not _close(row["miou"], _naive_miou(ignored))
    assert _close(row["pixel_acc"], np.trace(conf) / conf.sum())
    for name, iou in zip(CLASSES4, _naive_ious(conf), strict=True):
        assert _close(row[f"iou_{name}"], iou)


def test_eval_seg_matches_naive_confusion(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    rng = np.random.default_rng(5)
    images, total = {}, np.zeros((4, 4), dtype=np.int64)
    for image_id in ("s1", "s2"):
        gt = rng.choice(np.array([0, 1, 3, 255], np.uint8), size=(6, 5))
        pred = rng.choice(np.array([0, 1, 2, 3], np.uint8), size=(6, 5))
        images[image_id] = {"gt": gt}
        save_label_png(tmp_path / "pred" / f"{image_id}.png", pred, voc_palette())
        total += _naive_conf(pred, gt, 4)
    _write_tree(root, index_path, classes=CLASSES4, split="val", images=images)
    out = tmp_path / "seg.csv"
    run_eval_seg(
        index_path,
        root,
        tmp_path / "pred",
        out,
        dataset="toy",
        experiment="exp",
        split="val",
        gt_dir="SegmentationClass",
    )
    (row,) = pd.read_csv(out).to_dict("records")
    assert row["stage"] == "seg" and row["threshold"] == "none"
    assert math.isnan(row["bg_threshold"])
    assert _close(row["miou"], _naive_miou(total))


# ---------------------------------------------------------------------------------------------
# collect_metrics


def _metric_csv(path: Path, rows: list[dict], extra: dict | None = None) -> None:
    fields = [
        "dataset",
        "experiment",
        "stage",
        "split",
        "threshold",
        "bg_threshold",
        "miou",
        "pixel_acc",
        "iou_background",
        "iou_x",
    ]
    # Columns deliberately in a different order, plus an optional extra one.
    fields = fields[::-1] + list(extra or {})
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            full = {
                "dataset": "toy",
                "iou_background": 0.5,
                "iou_x": 0.25,
                "pixel_acc": 0.75,
                **(extra or {}),
                **r,
            }
            writer.writerow(full)


def test_collect_metrics_orders_rows_and_columns(tmp_path: Path) -> None:
    def row(exp: str, stage: str, split: str, thr: str, miou: float) -> dict:
        bg = "" if stage == "seg" else 0.3
        return {
            "experiment": exp,
            "stage": stage,
            "split": split,
            "threshold": thr,
            "bg_threshold": bg,
            "miou": miou,
        }

    rows = [
        row("b", "seg", "val", "none", 0.1),
        row("a", "seg", "val", "none", 0.2),
        row("b", "cam", "val", "oracle", 0.3),
        row("a", "pseudo", "train", "fixed", 0.4),
        row("a", "cam", "val", "fixed", 0.5),
        row("a", "cam", "train", "oracle", 0.6),
        row("a", "cam", "train", "fixed", 0.7),
        row("b", "pseudo", "val", "fixed", 0.8),
        row("b", "cam", "train", "fixed", 0.9),
    ]
    files = [tmp_path / f"m{i}.csv" for i in range(3)]
    _metric_csv(files[0], rows[:3])
    _metric_csv(files[1], rows[3:6], extra={"notes": "dropped"})
    _metric_csv(files[2], rows[6:])
    out = tmp_path / "results" / "miou.csv"
    table = run_collect_metrics(files, out, classes=["background", "x"])

    columns = [
        "dataset",
        "experiment",
        "stage",
        "split",
        "threshold",
        "bg_threshold",
        "miou",
        "pixel_acc",
        "iou_background",
        "iou_x",
    ]
    rank = {"cam": 0, "pseudo": 1, "seg": 2}
    expected = sorted(
        rows, key=lambda r: (r["experiment"], rank[r["stage"]], r["split"], r["threshold"])
    )
    written = pd.read_csv(out)
    for frame in (table, written):
        assert list(frame.columns) == columns
        assert list(frame["miou"]) == pytest.approx([r["miou"] for r in expected])
        assert list(frame["threshold"]) == [r["threshold"] for r in expected]
    assert written["bg_threshold"].isna().sum() == 2
    assert set(written["dataset"]) == {"toy"}


def test_collect_metrics_adds_seed_column_and_mean_std_rows(tmp_path: Path) -> None:
    rows = [
        {"experiment": run, "stage": stage, "split": "val", "threshold": thr, "miou": m}
        for run, m in (("a", 0.5), ("a@1", 0.7), ("a@2", 0.6), ("b", 0.1))
        for stage, thr in (("cam", "oracle"), ("seg", "none"))
    ]
    for row in rows:
        row["bg_threshold"] = 0.3 if row["stage"] == "cam" else ""
    _metric_csv(tmp_path / "m.csv", rows)
    runs = {"a": ["a", 0], "a@1": ["a", 1], "a@2": ["a", 2], "b": ["b", 4]}
    out = tmp_path / "miou.csv"
    run_collect_metrics([tmp_path / "m.csv"], out, classes=["background", "x"], runs=runs)
    table = pd.read_csv(out, dtype={"seed": str})
    assert list(table.columns[:4]) == ["dataset", "experiment", "seed", "stage"]
    a_seg = table[(table.experiment == "a") & (table.stage == "seg")]
    assert list(a_seg.seed) == ["0", "1", "2", "mean", "std"]
    assert list(a_seg.miou) == pytest.approx([0.5, 0.7, 0.6, 0.6, 0.1])  # sample std
    assert list(table[table.experiment == "b"].seed) == ["4", "4"]  # one seed: no summary
    a_cam = table[(table.experiment == "a") & (table.stage == "cam")]
    assert list(a_cam.seed) == ["0", "1", "2", "mean", "std"]
    with pytest.raises(ValueError, match="unknown runs"):
        run_collect_metrics(
            [tmp_path / "m.csv"], out, classes=["background", "x"], runs={"a": ["a", 0]}
        )


def test_collect_metrics_missing_column(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    base = {
        "experiment": "a",
        "stage": "cam",
        "split": "val",
        "threshold": "fixed",
        "bg_threshold": 0.3,
        "miou": 0.5,
    }
    _metric_csv(good, [base])
    pd.read_csv(good).drop(columns=["iou_x"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="iou_x"):
        run_collect_metrics([bad], tmp_path / "out.csv", classes=["background", "x"])
    assert not (tmp_path / "out.csv").exists()


# ---------------------------------------------------------------------------------------------
# atomic_dir / one_line_errors


def test_atomic_dir_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "parent" / "out"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("previous")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("boom")
    assert os.listdir(target.parent) == ["out"]
    assert os.listdir(target) == ["old.txt"]
    assert (target / "old.txt").read_text() == "previous"


def test_atomic_dir_success_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "parent" / "out"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("previous")
    with atomic_dir(target) as tmp:
        assert tmp != target and not (tmp / "old.txt").exists()
        (tmp / "new.txt").write_text("fresh")
    assert os.listdir(target.parent) == ["out"]
    assert os.listdir(target) == ["new.txt"]


def test_atomic_dir_discards_stale_temp_dir(tmp_path: Path) -> None:
    target = tmp_path / "out"
    stale = tmp_path / ".out.tmp"  # left by a killed run
    stale.mkdir()
    (stale / "junk.txt").write_text("x")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("fresh")
    assert os.listdir(tmp_path) == ["out"]
    assert os.listdir(target) == ["new.txt"]


def test_atomic_dir_creates_missing_parent(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    assert (target / "x").read_text() == "1"
    assert os.listdir(target.parent) == ["out"]


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (FileNotFoundError("checkpoint not found: /nowhere/model.pt"), "/nowhere/model.pt"),
        (ValueError("bad value 3 for train.steps"), "bad value 3 for train.steps"),
        (KeyError("split 'tset' not in index.json"), "split 'tset' not in index.json"),
    ],
)
def test_one_line_errors(caplog: pytest.LogCaptureFixture, exc: Exception, text: str) -> None:
    caplog.set_level(logging.DEBUG, logger="wsss")
    with pytest.raises(SystemExit) as info:
        with one_line_errors():
            raise exc
    assert info.value.code == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "\n" not in message
    assert text in message and type(exc).__name__ in message
    assert errors[0].exc_info is None  # the traceback goes to DEBUG only
    assert not message.startswith(f'{type(exc).__name__}: "')  # KeyError not re-quoted


def test_one_line_errors_lets_other_errors_through() -> None:
    with pytest.raises(RuntimeError, match="internal"):
        with one_line_errors():
            raise RuntimeError("internal")


# ---------------------------------------------------------------------------------------------
# Training / inference smoke tests

BACKBONE = {"name": "resnet", "depth": 10, "output_stride": 16, "base_width": 4, "frozen_bn": False}
TRAIN = {
    "steps": 2,
    "batch_size": 2,
    "optimizer": "adamw",
    "lr": 1e-3,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "poly_power": 0.9,
    "lr_mults": {"backbone": 1.0, "head": 1.0},
    "crop_size": 32,
    "scale_range": [0.8, 1.2],
    "jitter": 0.1,
    "num_workers": 0,
    "checkpoint_every": 1,
}


def _assert_checkpoint(path: Path, build, classes: list[str]) -> torch.nn.Module:
    ckpt = load_checkpoint(path)
    assert ckpt["classes"] == classes
    model = load_model(path, build, CPU)
    state = model.state_dict()
    assert state.keys() == ckpt["state_dict"].keys()
    assert all(torch.equal(state[k], ckpt["state_dict"][k]) for k in state)
    assert not Path(f"{path}.resume").exists()
    return model


def _assert_loss_log(path: Path, steps: int) -> None:
    log = pd.read_csv(path)
    assert {"step", "loss", "lr"} <= set(log.columns) and len(log) >= 1
    assert log["step"].iloc[-1] == steps
    assert np.isfinite(log["loss"]).all()


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
        model={"backbone": BACKBONE, "pretrained": None, "detach_until": None},
        train=TRAIN,
        seed=0,
        device=CPU,
    )
    return out / "cam.pt"


def test_train_cam_smoke(cam_model: Path) -> None:
    model = _assert_checkpoint(cam_model, build_cam_model, SYNTH_CLASSES)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, len(SYNTH_CLASSES) - 1)
    _assert_loss_log(cam_model.parent / "loss.csv", TRAIN["steps"])


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
    ids = _split_ids(synth_root, "val")
    assert sorted(os.listdir(out)) == sorted([f"{i}.npz" for i in ids] + ["manifest.json"])
    assert os.listdir(out.parent) == ["cams"]
    for image_id in ids:
        cam = load_cam_npz(out / f"{image_id}.npz")
        assert cam["keys"].tolist() == _mask_fg(synth_root, image_id)
        with Image.open(synth_root / "JPEGImages" / f"{image_id}.jpg") as img:
            w, h = img.size
        assert cam["high_res"].shape == (len(cam["keys"]), h, w)
        assert cam["high_res"].min() >= 0 and cam["high_res"].max() <= 1


PCM_CAMS = {
    "seam": {
        "model": {
            "backbone": {**BACKBONE, "output_stride": 8},
            "pretrained": None,
            "feature_stages": ["layer2", "layer3", "layer4"],
            "embed_channels": [4, 4, 8],
        },
        "loss": {"view_scale": 0.5},
    },
    "cpn": {  # on a narrow ResNet-38, the CPN backbone
        "model": {
            "backbone": {"name": "resnet38", "width": 0.0625, "frozen_bn": False},
            "pretrained": None,
            "embed_channels": [4, 4, 8],
            "prcm_layout": "transpose",
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
        train=TRAIN,
        seed=0,
        device=CPU,
        method=method,
        loss=spec["loss"],
    )
    model = _assert_checkpoint(tmp_path / "cam.pt", build_cam_model, SYNTH_CLASSES)
    assert load_checkpoint(tmp_path / "cam.pt")["model_name"] == method
    assert (model.f10 is not None) == (method == "cpn")  # PRCM only in CPN
    _assert_loss_log(tmp_path / "loss.csv", TRAIN["steps"])
    run_infer_cam(
        synth_index,
        synth_root,
        tmp_path / "cam.pt",
        tmp_path / "maps",
        split="val",
        scales=[1.0],
        flip=True,
        device=CPU,
        normalization="minmax",
    )
    for image_id in _split_ids(synth_root, "val"):
        cam = load_cam_npz(tmp_path / "maps" / f"{image_id}.npz")
        assert cam["keys"].tolist() == _mask_fg(synth_root, image_id)
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
            train=TRAIN,
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
            train=TRAIN,
            seed=0,
            device=CPU,
            method="nope",
        )


SEG_MODEL_CONFIGS = {
    "deeplab": {  # no loss entry: plain cross-entropy
        "head": "v3",
        "aspp_channels": 8,
        "atrous_rates": [2, 4],
        "pretrained": None,
        "backbone": {**BACKBONE, "output_stride": 8},
    },
    "ccnet": {
        "backbone": {**BACKBONE, "output_stride": 8, "deep_stem": True, "stem_pool_ceil": True},
        "pretrained": None,
        "inter_channels": 8,
        "aux_channels": 8,
        "reduction": 8,
        "recurrence": 2,
        "dropout": 0.1,
        "cca_impl": "auto",
        "loss": {"aux_weight": 0.4, "ohem": {"thresh": 0.7, "min_kept": 100}},
    },
    "pcaa": {
        "backbone": {**BACKBONE, "output_stride": 8, "deep_stem": True, "contract_dilation": False},
        "pretrained": None,
        "bins": [[4, 4]],
        "channels": 8,
        "attention_channels": 4,
        "aux_channels": 4,
        "loss": {
            "aux_weight": 0.4,
            "ohem": None,
            "cls_weight": 1.0,
            "focal_gamma": 2.0,
            "bin_threshold": 0.01,
        },
    },
}


def test_seg_loss_fn_follows_the_loss_entry() -> None:
    gen = torch.Generator().manual_seed(0)
    outputs = {"out": torch.randn(2, 3, 5, 6, generator=gen), "aux": torch.randn(2, 3, 5, 6)}
    mask = torch.randint(0, 3, (2, 5, 6), generator=gen)
    mask[0, 0, :4] = 255
    batch = {"image": torch.zeros(2, 3, 5, 6), "mask": mask}

    def model(image):
        return outputs

    def naive_ce(logits):  # mean −log softmax over the non-ignored pixels, by hand
        logp = logits.double().log_softmax(1)
        terms = [
            -logp[b, mask[b, y, x], y, x]
            for b in range(2)
            for y in range(5)
            for x in range(6)
            if mask[b, y, x] != 255
        ]
        return sum(terms) / len(terms)

    plain = naive_ce(outputs["out"]).item()
    assert seg_loss_fn(None)(model, batch).item() == pytest.approx(plain, rel=1e-6)
    no_aux = seg_loss_fn({"aux_weight": 0.0, "ohem": None})(model, batch)
    assert no_aux.item() == pytest.approx(plain, rel=1e-6)
    with_aux = seg_loss_fn({"aux_weight": 0.25, "ohem": None})(model, batch)
    expected = plain + 0.25 * naive_ce(outputs["aux"]).item()
    assert with_aux.item() == pytest.approx(expected, rel=1e-6)
    keep_all = seg_loss_fn({"aux_weight": 0.0, "ohem": {"thresh": 0.0, "min_kept": 1000}})
    assert keep_all(model, batch).item() == pytest.approx(plain, rel=1e-6)
    with pytest.raises(ValueError, match="aux_weight"):
        seg_loss_fn({"ohem": None})


@pytest.mark.parametrize(
    "model_name, external_masks",
    [("deeplab", False), ("deeplab", True), ("ccnet", True), ("pcaa", True)],
)
def test_train_and_infer_seg_smoke(
    synth_root: Path, synth_index: Path, tmp_path: Path, model_name: str, external_masks: bool
) -> None:
    mask_dir: str | Path = "SegmentationClassAug"  # relative: resolved under root
    if external_masks:  # an absolute pseudo-mask folder outside the dataset tree
        mask_dir = tmp_path / "pseudo"
        shutil.copytree(synth_root / "SegmentationClassAug", mask_dir)
    model_cfg = SEG_MODEL_CONFIGS[model_name]
    ckpt = tmp_path / "seg.pt"
    run_train_seg(
        synth_index,
        synth_root,
        ckpt,
        tmp_path / "loss.csv",
        split="train_aug",
        mask_dir=mask_dir,
        model_name=model_name,
        model=model_cfg,
        train=TRAIN,
        seed=0,
        device=CPU,
    )
    model = _assert_checkpoint(ckpt, build_seg_model, SYNTH_CLASSES)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 20, 28))["out"].shape == (1, len(SYNTH_CLASSES), 20, 28)
    _assert_loss_log(tmp_path / "loss.csv", TRAIN["steps"])

    out = tmp_path / "pred"
    run_infer_seg(
        synth_index, synth_root, ckpt, out, split="val", scales=[1.0], flip=True, device=CPU
    )
    for image_id in _split_ids(synth_root, "val"):
        with Image.open(synth_root / "JPEGImages" / f"{image_id}.jpg") as img:
            size = img.size
        with Image.open(out / f"{image_id}.png") as pred:
            assert pred.mode == "P" and pred.size == size
            assert np.array(pred).max() < len(SYNTH_CLASSES)
