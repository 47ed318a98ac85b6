"""benchmarks/bench_stages.py's measurement on a tiny network and crop, so the script cannot rot."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    path = REPO / "benchmarks" / "bench_stages.py"
    spec = importlib.util.spec_from_file_location("bench_stages", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_voc_kwargs_build_every_network(bench):
    voc = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]["voc"]
    kwargs = bench.voc_model_kwargs(voc, "cpn")
    assert kwargs["prcm"] is True and kwargs["num_fg_classes"] == 20
    assert "pretrained" not in kwargs
    seg = bench.voc_model_kwargs(voc, "ccnet")
    assert seg["num_classes"] == 21 and not {"pretrained", "loss", "train"} & set(seg)


def test_measure_rows_and_differences(bench):
    config = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]["synth"]
    model = config["seg"]["models"]["deeplab"]
    rows = bench.measure(
        "deeplab", {"num_classes": 3, **model["net"]}, crop=32, batch=2, amp_modes=["off", "bf16"],
        device=torch.device("cpu"), warmup=0, iters=1,
    )  # fmt: skip
    assert [(r["mode"], r["amp"]) for r in rows] == [
        ("infer", "off"), ("train", "off"), ("infer", "bf16"), ("train", "bf16"),
    ]  # fmt: skip
    for row in rows:
        assert row["network"] == "deeplab" and row["crop"] == 32 and row["batch"] == 2
        assert row["images_per_s"] > 0 and math.isfinite(row["images_per_s"])
    assert rows[0]["ratio"] == 1.0 and rows[1]["ratio"] == 1.0
    assert rows[2]["ratio"] == pytest.approx(rows[2]["images_per_s"] / rows[0]["images_per_s"])
    assert rows[0]["max_abs_diff"] == 0.0  # float32 against itself
    bf16 = rows[2]["max_abs_diff"]
    # bf16 keeps 8 mantissa bits: a few per cent of the output's range, never zero or NaN
    assert 0.0 < bf16 <= 0.1 * rows[2]["max_abs_ref"]
    assert rows[1]["max_abs_diff"] is None and rows[3]["max_abs_diff"] is None
    assert "deeplab" in bench.format_row(rows[2]) and "2x32²" in bench.format_row(rows[2])
