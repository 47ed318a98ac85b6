"""The report's words and figures: row descriptions, the HTML table, plots, gallery, curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from wsss.data.synthetic import generate
from wsss.data.voc import voc_palette
from wsss.io import read_ids, save_cam_npz, save_label_png
from wsss.plots import cam_overlay, colorize
from wsss.reporting import describe_row, metrics_html
from wsss.stages.common import DatasetIndex
from wsss.stages.figures import run_plot_curves, run_plot_gallery, run_report_table

EXPERIMENTS = {
    "base": {"supervision": "weak", "refine": "crf", "seg_model": "deeplab", "crf": "irn_label"},
    "rw": {"supervision": "weak", "refine": "irn", "cams_from": "base", "seg_model": "deeplab"},
    "ccnet": {"supervision": "weak", "masks_from": "base", "seg_model": "ccnet"},
    "oracle": {"supervision": "full", "seg_model": "deeplab"},
}
SPLITS = {"train": "SegmentationClass", "val": "SegmentationClass"}
CLASSES = ["background", "a"]


def _row(experiment, stage, split, threshold, bg, seed="0", miou=0.5):
    return {
        "dataset": "toy",
        "experiment": experiment,
        "seed": seed,
        "stage": stage,
        "split": split,
        "threshold": threshold,
        "bg_threshold": bg,
        "miou": miou,
        "pixel_acc": 0.9,
        "iou_background": 0.8,
        "iou_a": miou,
    }


ROWS = [
    _row("base", "cam", "train", "fixed", 0.5),
    _row("base", "cam", "train", "oracle", 0.35),
    _row("base", "pseudo", "train", "fixed", 0.5),
    _row("rw", "pseudo", "train", "fixed", float("nan")),
    _row("ccnet", "seg", "val", "none", float("nan")),
    _row("oracle", "seg", "val", "none", float("nan"), seed="mean"),
]


@pytest.mark.parametrize(
    "row, words",
    [
        (
            ROWS[0],
            ["CAM seeds of the IRN (plain CAM)", "'train' split", "fixed in the config at 0.50"],
        ),
        (ROWS[1], ["swept on this ground truth, best 0.35", "upper bound"]),
        (ROWS[2], ["dense CRF (irn_label)", "unlabelled pixels counted as background", "0.50"]),
        (ROWS[3], ["IRNet random walk of base's CAMs", "no threshold"]),
        (ROWS[4], ["final ccnet segmentation trained on the pseudo masks of base", "'val'"]),
        (ROWS[5], ["ground-truth masks (full supervision", "mean over the seeds"]),
    ],
)
def test_each_row_says_what_it_measures(row, words) -> None:
    text = describe_row(row, EXPERIMENTS, SPLITS)
    for word in words:
        assert word in text, (word, text)


def test_metrics_page(tmp_path: Path) -> None:
    path = tmp_path / "miou.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    out = tmp_path / "metrics.html"
    run_report_table(
        path, out, dataset="toy", classes=CLASSES, experiments=EXPERIMENTS, splits=SPLITS
    )
    page = out.read_text()
    assert page.count("<tr") == 2 * (len(ROWS) + 1)
    assert page.count('class="summary"') == 2  # the mean row, in both tables
    assert "<th>a</th>" in page and "what this number is" in page
    assert page == metrics_html(
        pd.read_csv(path, dtype={"seed": str}),
        dataset="toy",
        classes=CLASSES,
        experiments=EXPERIMENTS,
        splits=SPLITS,
    )


def test_colours_and_overlay() -> None:
    label = np.array([[0, 1], [255, 2]], dtype=np.uint8)
    assert colorize(label, voc_palette())[0, 1].tolist() == [128, 0, 0]
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    overlay = cam_overlay(image, np.ones((1, 2, 2), dtype=np.float32))
    assert overlay.shape == (2, 2, 3) and overlay.dtype == np.uint8
    assert (cam_overlay(image, np.zeros((0, 2, 2))) > 0).any()  # no classes: cold colour


def _is_png(path: Path) -> bool:
    with Image.open(path) as img:
        return img.format == "PNG" and img.size[0] > 50


def test_curves(tmp_path: Path) -> None:
    miou = tmp_path / "miou.csv"
    pd.DataFrame(ROWS).to_csv(miou, index=False)
    curve_dir = tmp_path / "base" / "cam" / "eval"
    curve_dir.mkdir(parents=True)
    grid = np.linspace(0.05, 0.95, 19)
    pd.DataFrame({"bg_threshold": grid, "miou": 0.5 - (grid - 0.4) ** 2}).to_csv(
        curve_dir / "threshold_curve.csv", index=False
    )
    pd.DataFrame(ROWS[:2]).to_csv(curve_dir / "metrics.csv", index=False)
    log = tmp_path / "train_log.csv"
    pd.DataFrame({"step": [10, 20, 30], "loss": [1.0, 0.7, 0.5], "lr": 0.1}).to_csv(log)
    outs = [tmp_path / f"{name}.png" for name in ("per_class", "thresholds", "losses")]
    run_plot_curves(
        miou,
        *outs,
        classes=CLASSES,
        curves={"base": curve_dir / "threshold_curve.csv"},
        logs={"segmentation network": {"base": log}, "affinity network": {}},
    )
    assert all(_is_png(p) for p in outs)
    run_plot_curves(miou, *outs, classes=CLASSES, curves={}, logs={})  # nothing to draw
    assert all(_is_png(p) for p in outs)


def test_gallery(tmp_path: Path) -> None:
    root = tmp_path / "data"
    generate(
        root,
        seed=0,
        num_train_aug=4,
        num_train=2,
        num_val=2,
        image_size_range=(48, 56),
        scale_range=(0.3, 0.8),
    )
    index_path = tmp_path / "index.json"
    ids = {s: read_ids(root / "ImageSets/Segmentation" / f"{s}.txt") for s in ("train", "val")}
    DatasetIndex.write(
        index_path,
        classes=["background", *[f"c{i}" for i in range(6)]],
        splits=ids,
        labels={i: np.zeros(6) for split in ids.values() for i in split},
    )
    folders = {k: tmp_path / k for k in ("cams", "masks", "predictions")}
    for names in ids.values():
        for image_id in names:
            with Image.open(root / "JPEGImages" / f"{image_id}.jpg") as img:
                w, h = img.size
            save_cam_npz(
                folders["cams"] / f"{image_id}.npz",
                keys=np.array([0]),
                high_res=np.random.default_rng(0).random((1, h, w)),
            )
            for key in ("masks", "predictions"):
                save_label_png(folders[key] / f"{image_id}.png", np.zeros((h, w)), voc_palette())
    out = tmp_path / "gallery"
    run_plot_gallery(
        index_path,
        root,
        out,
        runs={
            "weak": {k: str(v) for k, v in folders.items()},
            "full": {"cams": None, "masks": None, "predictions": str(folders["predictions"])},
        },
        train_split="train",
        train_gt="SegmentationClass",
        val_split="val",
        val_gt="SegmentationClass",
        count=2,
    )
    assert sorted(p.name for p in out.iterdir()) == ["full.png", "weak.png"]
    assert all(_is_png(p) for p in out.iterdir())
