"""collect_metrics (wsss.stages.report): rows and columns in order, the seed column with mean
and std rows, and a missing column named."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from wsss.stages.report import run_collect_metrics


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
