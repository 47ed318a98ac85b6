"""Report figures with matplotlib's object API (Agg canvas; no pyplot, no global backend).

Each ``*_figure`` function takes plain data and returns a :class:`~matplotlib.figure.Figure`;
:func:`save_figure` writes one atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from wsss.io import atomic_path

__all__ = [
    "cam_overlay",
    "colorize",
    "gallery_figure",
    "loss_figure",
    "per_class_figure",
    "save_figure",
    "threshold_figure",
]


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 90) -> None:
    """Render ``fig`` to ``path`` (format from the suffix) through a temporary file."""
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")


def colorize(label: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``(H, W)`` label ids → ``(H, W, 3)`` uint8 colours of the ``(256, 3)`` palette."""
    return np.asarray(palette, dtype=np.uint8)[np.asarray(label, dtype=np.uint8)]


def cam_overlay(image: np.ndarray, cams: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image blended with a jet heat map of the strongest class activation per pixel.

    Args:
        image: ``(H, W, 3)`` uint8.
        cams: ``(K, H, W)`` float CAMs in [0, 1] of the K present classes (K may be 0).
    """
    heat = cams.max(axis=0) if len(cams) else np.zeros(image.shape[:2], dtype=np.float32)
    colours = colormaps["jet"](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    return (alpha * colours + (1.0 - alpha) * image).astype(np.uint8)


def _empty(fig: Figure, text: str) -> Figure:
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def per_class_figure(table: pd.DataFrame, classes: Sequence[str]) -> Figure:
    """Heat map of per-class IoU (%) for every row of ``miou.csv`` except ``std`` rows."""
    if "seed" in table:
        table = table[table["seed"].astype(str) != "std"]
    labels = [
        " · ".join(
            str(row[c]) for c in ("experiment", "seed", "stage", "split", "threshold") if c in row
        )
        for _, row in table.iterrows()
    ]
    values = table[[f"iou_{c}" for c in classes]].to_numpy(dtype=float) * 100.0
    fig = Figure(figsize=(2.5 + 0.45 * len(classes), 1.0 + 0.3 * len(labels)))
    if not len(labels):
        return _empty(fig, "no metric rows")
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    if len(classes) <= 25:
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7, color="white")
    fig.colorbar(image, ax=ax, label="IoU %")
    ax.set_title("Per-class IoU")
    return fig


def threshold_figure(curves: Mapping[str, pd.DataFrame], fixed: Mapping[str, float]) -> Figure:
    """CAM mIoU against the background threshold, one line per run; the fixed (config)
    threshold is marked with a cross, the curve's maximum (the oracle) with a dot."""
    fig = Figure(figsize=(7, 4.5))
    if not curves:
        return _empty(fig, "no experiment evaluates its own CAMs")
    ax = fig.add_subplot()
    for run, curve in curves.items():
        (line,) = ax.plot(curve["bg_threshold"], curve["miou"] * 100, label=run)
        best = curve["miou"].idxmax()
        ax.plot(curve["bg_threshold"][best], curve["miou"][best] * 100, "o", color=line.get_color())
        if run in fixed:
            at = np.interp(fixed[run], curve["bg_threshold"], curve["miou"]) * 100
            ax.plot(fixed[run], at, "x", color=line.get_color(), markersize=9)
    ax.set_xlabel("background threshold")
    ax.set_ylabel("CAM mIoU %")
    ax.set_title("CAM mIoU vs background threshold (x: config, o: swept on ground truth)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return fig


def loss_figure(logs: Mapping[str, Mapping[str, pd.DataFrame]]) -> Figure:
    """Training loss against the step: one panel per trained network (``logs``: panel title →
    run → ``train_log.csv`` with ``step`` and ``loss``)."""
    panels = {title: runs for title, runs in logs.items() if runs}
    fig = Figure(figsize=(5 * max(1, len(panels)), 4))
    if not panels:
        return _empty(fig, "no training logs")
    for k, (title, runs) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), k + 1)
        for run, log in runs.items():
            marker = "o" if len(log) < 20 else None  # short runs log a handful of points
            ax.plot(log["step"], log["loss"], label=run, marker=marker)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def gallery_figure(
    rows: Sequence[tuple[str, Sequence[np.ndarray | str]]], columns: Sequence[str]
) -> Figure:
    """A grid of images: one row per image id, one column per view; a cell given as a string
    stays empty but for that text (a view the stage did not make for that split)."""
    fig = Figure(figsize=(1.9 * len(columns), 1.7 * max(1, len(rows))))
    if not rows:
        return _empty(fig, "no images")
    for i, (title, cells) in enumerate(rows):
        for j, cell in enumerate(cells):
            ax = fig.add_subplot(len(rows), len(columns), i * len(columns) + j + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if isinstance(cell, str):
                ax.axis("off")
                ax.text(0.5, 0.5, cell, ha="center", va="center", fontsize=7, color="grey")
            else:
                ax.imshow(cell)
            if i == 0:
                ax.set_title(columns[j], fontsize=9)
            if j == 0:
                ax.set_ylabel(title, fontsize=6)
    return fig
