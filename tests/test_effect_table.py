"""benchmarks/effect_table.py on a hand-written miou.csv: the rows it picks and the changes it
prints are worked out by hand."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADER = "dataset,experiment,seed,stage,split,threshold,bg_threshold,miou\n"
ROWS = """\
d,baseline,0,cam,train,fixed,0.15,0.40
d,baseline,0,cam,train,oracle,0.30,0.45
d,baseline,0,pseudo,train,fixed,0.15,0.60
d,baseline,0,seg,train,none,,0.90
d,baseline,0,seg,val,none,,0.64
d,oracle,0,seg,val,none,,0.80
d,irn,0,pseudo,train,none,,0.66
d,irn,0,seg,val,none,,0.62
d,baseline,1,cam,train,fixed,0.15,0.10
"""


def test_effect_table_picks_fixed_cam_val_seg_and_one_seed(tmp_path):
    path = tmp_path / "miou.csv"
    path.write_text(HEADER + ROWS)
    script = REPO / "benchmarks" / "effect_table.py"
    out = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, check=True
    ).stdout
    lines = out.splitlines()
    assert lines[2] == "| baseline | 0.400 |  | 0.600 |  | 0.640 |  |"
    assert lines[3] == "| oracle | – |  | – |  | 0.800 | +0.160 |"
    assert lines[4] == "| irn | – |  | 0.660 | +0.060 | 0.620 | -0.020 |"
    # 0.40 / 0.80, 0.60 / 0.80, 0.64 / 0.80
    assert lines[-1] == "oracle 0.800; baseline / oracle: cam 0.50, pseudo 0.75, seg 0.80"


def test_effect_table_reads_the_seed_it_is_given(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "effect_table", REPO / "benchmarks/effect_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [
        dict(zip(HEADER.strip().split(","), r.split(","), strict=True)) for r in ROWS.splitlines()
    ]
    assert module.stage_scores(rows, "1") == {"baseline": {"cam": 0.10}}
