"""Collect every evaluation's rows into ``results/<dataset>/miou.csv``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from wsss.io import atomic_path
from wsss.stages.common import METRIC_COLUMNS

__all__ = ["run_collect_metrics", "seed_summary"]

_STAGE_ORDER = {"cam": 0, "pseudo": 1, "seg": 2}
_KEYS = ["experiment", "stage", "split", "threshold"]


def run_collect_metrics(
    metric_files: Sequence[str | os.PathLike],
    out_csv: str | os.PathLike,
    *,
    classes: Sequence[str],
    runs: Mapping[str, Sequence] | None = None,
) -> pd.DataFrame:
    """Concatenate per-stage metric CSVs in a stable order (experiment, stage, split, threshold).

    Columns: ``dataset, experiment, stage, split, threshold, bg_threshold, miou, pixel_acc``,
    then ``iou_<class>`` for every class. mIoU and IoUs are fractions in [0, 1].

    Args:
        runs: run name (the ``experiment`` the metric files carry, e.g. ``baseline@1``) →
            ``(experiment, seed)``. When given, ``experiment`` becomes the experiment's name, a
            ``seed`` column follows it, and every experiment run with two or more seeds gets
            ``seed = mean`` and ``seed = std`` rows (:func:`seed_summary`) after its per-seed
            rows.

    Raises:
        ValueError: a metric file lacks a column, or names a run ``runs`` does not know.
    """
    table = pd.concat([pd.read_csv(f) for f in metric_files], ignore_index=True)
    columns = METRIC_COLUMNS + [f"iou_{c}" for c in classes]
    missing = set(columns) - set(table.columns)
    if missing:
        raise ValueError(f"metric files lack columns {sorted(missing)}")
    table = table[columns]
    order = ["experiment", "stage", "split", "threshold"]
    if runs is not None:
        unknown = sorted(set(table["experiment"]) - set(runs))
        if unknown:
            raise ValueError(f"metric rows of unknown runs {unknown}; known: {sorted(runs)}")
        seeds = table["experiment"].map(lambda run: int(runs[run][1]))
        table["experiment"] = table["experiment"].map(lambda run: runs[run][0])
        table.insert(columns.index("experiment") + 1, "seed", seeds)
        table = pd.concat([table, seed_summary(table)], ignore_index=True)
        order.append("seed")
    table = table.sort_values(order, key=_sort_key, kind="stable").reset_index(drop=True)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    return table


def _sort_key(column: pd.Series) -> pd.Series:
    if column.name == "stage":
        return column.map(_STAGE_ORDER)
    if column.name == "seed":  # seeds ascending, then mean, then std
        last = {"mean": 2**62, "std": 2**62 + 1}
        return column.map(lambda s: int(s) if str(s).isdigit() else last[s])
    return column


def seed_summary(table: pd.DataFrame) -> pd.DataFrame:
    """``mean`` and ``std`` rows over the seeds of every (experiment, stage, split, threshold)
    with two or more seeds; ``std`` is the sample standard deviation (n − 1), as papers
    report "mean ± std" over runs. Numeric columns are aggregated (the swept threshold's
    ``bg_threshold`` too); the others are kept."""
    numeric = [c for c in table.columns if c not in ("dataset", *_KEYS, "seed")]
    rows = []
    for _, group in table.groupby(_KEYS, sort=False):
        if group["seed"].nunique() < 2:
            continue
        first = group.iloc[0]
        for name, values in (("mean", group[numeric].mean()), ("std", group[numeric].std())):
            rows.append({**first[["dataset", *_KEYS]].to_dict(), "seed": name, **values})
    return pd.DataFrame(rows, columns=table.columns)
