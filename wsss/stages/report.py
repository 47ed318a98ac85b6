"""Collect every evaluation's rows into ``results/<dataset>/miou.csv``."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from wsss.io import atomic_path
from wsss.stages.common import METRIC_COLUMNS

__all__ = ["run_collect_metrics"]

_STAGE_ORDER = {"cam": 0, "pseudo": 1, "seg": 2}


def run_collect_metrics(
    metric_files: Sequence[str | os.PathLike], out_csv: str | os.PathLike, *, classes: Sequence[str]
) -> pd.DataFrame:
    """Concatenate per-stage metric CSVs in a stable order (experiment, stage, split, threshold).

    Columns: ``dataset, experiment, stage, split, threshold, bg_threshold, miou, pixel_acc``,
    then ``iou_<class>`` for every class. mIoU and IoUs are fractions in [0, 1].
    """
    table = pd.concat([pd.read_csv(f) for f in metric_files], ignore_index=True)
    columns = METRIC_COLUMNS + [f"iou_{c}" for c in classes]
    missing = set(columns) - set(table.columns)
    if missing:
        raise ValueError(f"metric files lack columns {sorted(missing)}")
    table = table[columns]
    table = table.sort_values(
        ["experiment", "stage", "split", "threshold"],
        key=lambda col: col.map(_STAGE_ORDER) if col.name == "stage" else col,
        kind="stable",
    ).reset_index(drop=True)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    return table
