"""Stages report_table, plot_curves and plot_gallery: the pages and figures of the report."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from wsss.io import atomic_path, load_cam_npz, load_image, load_label_png
from wsss.plots import (
    cam_overlay,
    colorize,
    gallery_figure,
    loss_figure,
    per_class_figure,
    save_figure,
    threshold_figure,
)
from wsss.reporting import metrics_html
from wsss.stages.common import DatasetIndex, atomic_dir

__all__ = ["GALLERY_COLUMNS", "run_plot_curves", "run_plot_gallery", "run_report_table"]

log = logging.getLogger(__name__)

GALLERY_COLUMNS = ("image", "ground truth", "CAM overlay", "pseudo mask", "prediction")


def _read_table(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"seed": str, "threshold": str})


def run_report_table(
    miou_csv: str | os.PathLike,
    out_html: str | os.PathLike,
    *,
    dataset: str,
    classes: Sequence[str],
    experiments: Mapping[str, Mapping],
    splits: Mapping[str, str],
) -> None:
    """``miou.csv`` as an HTML page saying what each number is (:mod:`wsss.reporting`)."""
    page = metrics_html(
        _read_table(miou_csv),
        dataset=dataset,
        classes=list(classes),
        experiments=experiments,
        splits=splits,
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(page)


def run_plot_curves(
    miou_csv: str | os.PathLike,
    out_per_class: str | os.PathLike,
    out_thresholds: str | os.PathLike,
    out_losses: str | os.PathLike,
    *,
    classes: Sequence[str],
    curves: Mapping[str, str | os.PathLike],
    logs: Mapping[str, Mapping[str, str | os.PathLike]],
) -> None:
    """Per-class IoU heat map, CAM threshold curves and training loss curves.

    Args:
        curves: run → its ``cam/eval/threshold_curve.csv``; the fixed threshold is read from
            the ``metrics.csv`` beside it.
        logs: panel title (the trained network) → run → ``train_log.csv``.
    """
    save_figure(per_class_figure(_read_table(miou_csv), classes), out_per_class)
    tables, fixed = {}, {}
    for run, path in curves.items():
        tables[run] = pd.read_csv(path)
        rows = _read_table(Path(path).with_name("metrics.csv"))
        fixed[run] = float(rows.loc[rows["threshold"] == "fixed", "bg_threshold"].iloc[0])
    save_figure(threshold_figure(tables, fixed), out_thresholds)
    frames = {
        title: {run: pd.read_csv(p) for run, p in runs.items()} for title, runs in logs.items()
    }
    save_figure(loss_figure(frames), out_losses)


def _views(
    index: DatasetIndex,
    root: str | os.PathLike,
    split: str,
    gt_dir: str,
    count: int,
    sources: Mapping[str, str | None],
    note: str,
) -> list[tuple[str, list]]:
    """Gallery rows of the first ``count`` ids of ``split``: image, ground truth, then the
    CAM overlay, pseudo mask and prediction found in ``sources`` (None: ``note`` instead)."""
    files = index.files(root, split, gt_dir)
    palette = files.palette()
    rows = []
    for image_id in index.ids(split)[:count]:
        image = load_image(files.image_path(image_id))
        cells = [image, colorize(files.load_mask(image_id), palette)]
        if sources["cams"]:
            cams = load_cam_npz(Path(sources["cams"]) / f"{image_id}.npz")["high_res"]
            cells.append(cam_overlay(image, cams))
        else:
            cells.append(note)
        for key in ("masks", "predictions"):
            folder = sources[key]
            cells.append(
                colorize(load_label_png(Path(folder) / f"{image_id}.png"), palette)
                if folder
                else note
            )
        rows.append((f"{split}: {image_id}", cells))
    return rows


def run_plot_gallery(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    runs: Mapping[str, Mapping[str, str | None]],
    train_split: str,
    train_gt: str,
    val_split: str,
    val_gt: str,
    count: int,
) -> None:
    """One ``<run>.png`` per run: the first ``count`` images of the training evaluation split
    (image, ground truth, CAM overlay, pseudo mask) and of the held-out split (image, ground
    truth, prediction): the CAM and mask stages run on training images, the seg network is
    evaluated on held-out ones, so each row shows what exists for its split.

    Args:
        runs: run → ``{"cams", "masks", "predictions"}`` folders (None where the run has none;
            ``cams``/``masks`` are those it builds on: its sources' for cams_from/masks_from).
    """
    index = DatasetIndex(index_path)
    with atomic_dir(out_dir) as tmp:
        for run, folders in runs.items():
            train = {**folders, "predictions": None}
            val = {"cams": None, "masks": None, "predictions": folders["predictions"]}
            rows = _views(index, root, train_split, train_gt, count, train, "—")
            rows += _views(index, root, val_split, val_gt, count, val, "—")
            save_figure(gallery_figure(rows, GALLERY_COLUMNS), Path(tmp) / f"{run}.png", dpi=80)
    log.info("wrote %d galleries to %s", len(runs), out_dir)
