"""Per-stage cost: Snakemake benchmark files of one dataset into ``results/<dataset>/cost.csv``.

Layout the workflow writes (``benchmark:`` of every rule that does real work)::

    results/<dataset>/benchmarks/<experiment>/<rule>.tsv             one job
    results/<dataset>/benchmarks/<experiment>/<rule>/<k>-of-<K>.tsv  one shard job
    results/<dataset>/benchmarks/_dataset/<rule>.tsv                 dataset-level jobs
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from wsss.io import atomic_path

__all__ = [
    "COST_COLUMNS",
    "DATASET_LEVEL",
    "benchmark_entries",
    "cost_table",
    "read_benchmark",
    "run_collect_cost",
]

DATASET_LEVEL = "_dataset"  # the experiment folder of jobs that belong to no experiment
COST_COLUMNS = [
    "experiment", "rule", "shard", "repeats", "wall_s", "cpu_s", "max_rss_mib",
    "io_in_mib", "io_out_mib",
]  # fmt: skip
# Snakemake's benchmark columns (MB = MiB there: bytes / 1024²) → ours, and how repeats combine.
_MEASURES = {
    "s": ("wall_s", "mean"),
    "cpu_time": ("cpu_s", "mean"),
    "max_rss": ("max_rss_mib", "max"),
    "io_in": ("io_in_mib", "mean"),
    "io_out": ("io_out_mib", "mean"),
}


def _number(text: str, path: Path, column: str) -> float:
    """A benchmark field as a float; Snakemake writes ``NA`` (or ``-``) when a job ended before
    the first sample of its resource use."""
    if text in ("NA", "-", ""):
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}: column {column!r} holds {text!r}, not a number") from None


def read_benchmark(path: str | os.PathLike) -> list[dict[str, float]]:
    """The repeats (one row each) of a Snakemake benchmark TSV, as ``{column: value}`` over the
    columns of ``_MEASURES`` (NaN where Snakemake wrote NA).

    Raises:
        ValueError: no header with an ``s`` column, a row of another width, no rows, or a field
            that is not a number.
    """
    path = Path(path)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    header = lines[0].split("\t") if lines else []
    if "s" not in header:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column in its header)")
    if len(lines) < 2:
        raise ValueError(f"{path}: benchmark file has a header but no rows")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise ValueError(
                f"{path}: line {number} has {len(fields)} fields, the header {len(header)}"
            )
        record = dict(zip(header, fields, strict=True))
        rows.append({col: _number(record.get(col, "NA"), path, col) for col in _MEASURES})
    return rows


def benchmark_entries(bench_dir: str | os.PathLike) -> list[tuple[str, str, str, Path]]:
    """``(experiment, rule, shard, path)`` of every benchmark file under ``bench_dir``, sorted
    (shard is "" for an unsharded job). A missing folder has none."""
    bench_dir = Path(bench_dir)
    entries = []
    for path in sorted(bench_dir.glob("*/*.tsv")) + sorted(bench_dir.glob("*/*/*.tsv")):
        parts = path.relative_to(bench_dir).with_suffix("").parts
        if len(parts) == 2:
            entries.append((parts[0], parts[1], "", path))
        else:
            entries.append((parts[0], parts[1], parts[2], path))
    return sorted(entries, key=lambda e: e[:3])


def _combine(values: Sequence[float], how: str) -> float:
    known = [v for v in values if not math.isnan(v)]
    if not known:
        return math.nan
    return max(known) if how == "max" else sum(known) / len(known)


def cost_table(entries: Iterable[tuple[str, str, str, str | os.PathLike]]) -> pd.DataFrame:
    """One row per job: its wall and CPU seconds (mean over the benchmark's repeats), peak
    resident memory (max over repeats, MiB) and MiB read and written (mean), NaN where every
    repeat has NA. Rows keep the order of ``entries``."""
    rows = []
    for experiment, rule, shard, path in entries:
        repeats = read_benchmark(path)
        row = {"experiment": experiment, "rule": rule, "shard": shard, "repeats": len(repeats)}
        for column, (name, how) in _MEASURES.items():
            row[name] = _combine([r[column] for r in repeats], how)
        rows.append(row)
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def run_collect_cost(
    bench_dir: str | os.PathLike,
    out_csv: str | os.PathLike,
    *,
    generation: dict[str, str | os.PathLike] | None = None,
) -> pd.DataFrame:
    """Write the cost table of every benchmark file under ``bench_dir`` to ``out_csv``
    (atomically; empty cells for NA).

    Args:
        generation: rule → benchmark file of the jobs that wrote the dataset tree (their only
            wildcard is the root, so their files live outside ``bench_dir``); rows under
            ``_dataset`` for those that exist (a tree made by hand has none).
    """
    made = [
        (DATASET_LEVEL, rule, "", Path(path))
        for rule, path in sorted((generation or {}).items())
        if Path(path).is_file()
    ]
    table = cost_table(made + benchmark_entries(bench_dir))
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    return table
