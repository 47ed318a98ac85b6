"""collect_cost (wsss.stages.cost): Snakemake benchmark TSVs (its exact format: NA fields,
repeats, the extended columns) into one cost row per job."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from wsss.stages.cost import benchmark_entries, cost_table, read_benchmark, run_collect_cost

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
EXTENDED = (
    HEADER + "\tjobid\trule_name\twildcards\tparams\tthreads\tcpu_usage\tresources\tinput_size_mb"
)


def _write(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_repeats_average_time_and_keep_the_peak_memory(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "b.tsv",
        HEADER,
        "12.5000\t0:00:12\t300.25\t900.00\t250.00\t260.00\t10.00\t2.00\t95.00\t11.00",
        "14.5000\t0:00:14\t512.75\t950.00\t260.00\t270.00\t12.00\t4.00\t97.00\t13.00",
        "13.0000\t0:00:13\t400.00\t920.00\t255.00\t265.00\t14.00\t6.00\t96.00\t12.00",
    )
    (row,) = cost_table([("baseline", "train_cam", "", path)]).to_dict("records")
    assert row["repeats"] == 3
    assert row["wall_s"] == pytest.approx((12.5 + 14.5 + 13.0) / 3)
    assert row["cpu_s"] == pytest.approx(12.0)
    assert row["max_rss_mib"] == pytest.approx(512.75)
    assert row["io_in_mib"] == pytest.approx(12.0) and row["io_out_mib"] == pytest.approx(4.0)


def test_na_fields_are_missing_not_zero(tmp_path: Path) -> None:
    # A job faster than the first resource sample: Snakemake writes NA for every measure but s.
    fast = _write(tmp_path / "fast.tsv", HEADER, "0.4100\t0:00:00\t" + "\t".join(["NA"] * 8))
    mixed = _write(
        tmp_path / "mixed.tsv",
        HEADER,
        "0.5000\t0:00:00\t" + "\t".join(["NA"] * 8),
        "2.5000\t0:00:02\t100.00\t200.00\t90.00\t95.00\t1.00\t1.00\t50.00\t2.00",
    )
    table = cost_table([("_dataset", "check_dataset", "", fast), ("x", "eval_seg", "", mixed)])
    first, second = table.to_dict("records")
    assert first["wall_s"] == pytest.approx(0.41)
    assert all(math.isnan(first[c]) for c in ("cpu_s", "max_rss_mib", "io_in_mib", "io_out_mib"))
    assert second["wall_s"] == pytest.approx(1.5)  # mean of both repeats
    assert second["max_rss_mib"] == pytest.approx(100.0)  # the one sampled repeat
    assert second["cpu_s"] == pytest.approx(2.0)


def test_extended_format_is_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "e.tsv",
        EXTENDED,
        "3.0000\t0:00:03\t64.00\t128.00\t60.00\t61.00\t0.50\t0.25\t80.00\t2.40\t7\ttrain_seg"
        "\tdataset=synth,experiment=oracle\t-\t1\t80.00\tmem_mb=8000\t12.00",
    )
    assert read_benchmark(path) == [
        {"s": 3.0, "cpu_time": 2.4, "max_rss": 64.0, "io_in": 0.5, "io_out": 0.25}
    ]


def test_layout_gives_experiment_rule_and_shard(tmp_path: Path) -> None:
    line = "1.0000\t0:00:01\t10.00\t20.00\t9.00\t9.50\t0.00\t0.00\t10.00\t0.90"
    bench = tmp_path / "results" / "synth" / "benchmarks"
    for rel in (
        "oracle@1/train_seg.tsv",
        "baseline/infer_cam/2-of-2.tsv",
        "baseline/infer_cam/1-of-2.tsv",
        "_dataset/check_dataset.tsv",
        "baseline/train_cam.tsv",
    ):
        _write(bench / rel, HEADER, line)
    generated = _write(tmp_path / "benchmarks/make_synthetic_voc/results/synth/dataset.tsv",
                       HEADER, line)  # fmt: skip
    assert [e[:3] for e in benchmark_entries(bench)] == [
        ("_dataset", "check_dataset", ""),
        ("baseline", "infer_cam", "1-of-2"),
        ("baseline", "infer_cam", "2-of-2"),
        ("baseline", "train_cam", ""),
        ("oracle@1", "train_seg", ""),
    ]
    out = tmp_path / "results" / "synth" / "cost.csv"
    generation = {"make_synthetic_voc": generated, "convert_coco": tmp_path / "absent.tsv"}
    run_collect_cost(bench, out, generation=generation)
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == [
        "experiment", "rule", "shard", "repeats", "wall_s", "cpu_s", "max_rss_mib",
        "io_in_mib", "io_out_mib",
    ]  # fmt: skip
    assert list(zip(table.experiment, table.rule, table.shard, strict=True)) == [
        ("_dataset", "make_synthetic_voc", ""),
        ("_dataset", "check_dataset", ""),
        ("baseline", "infer_cam", "1-of-2"),
        ("baseline", "infer_cam", "2-of-2"),
        ("baseline", "train_cam", ""),
        ("oracle@1", "train_seg", ""),
    ]
    assert list(table.max_rss_mib) == [10] * 6 and list(table.cpu_s) == [0.9] * 6
    assert not list(out.parent.glob(".*tmp*"))  # written under a temporary name, then renamed


def test_no_benchmarks_gives_an_empty_table(tmp_path: Path) -> None:
    table = run_collect_cost(tmp_path / "none", tmp_path / "cost.csv")
    assert table.empty and (tmp_path / "cost.csv").read_text().startswith("experiment,rule,")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["job\ttime", "a\t1"], "not a Snakemake benchmark file (no 's' column in its header)"),
        ([HEADER], "benchmark file has a header but no rows"),
        ([HEADER, "1.0\t0:00:01\t10"], "line 2 has 3 fields, the header 10"),
        ([HEADER, "1.0\t0:00:01\tlots" + "\tNA" * 7], "column 'max_rss' holds 'lots'"),
    ],
)
def test_bad_files_name_the_file_and_the_fault(tmp_path: Path, lines, message) -> None:
    path = _write(tmp_path / "bad.tsv", *lines)
    with pytest.raises(ValueError, match="^" + str(path).replace(".", r"\.")) as error:
        read_benchmark(path)
    assert message in str(error.value) and "\n" not in str(error.value)
