"""Sharded stages in the workflow: the K = 2 DAG, and a tiny baseline run with K = 1 and K = 2
whose per-image folders and metrics are byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARDED = {"infer_cam": 2, "pseudo_labels": 2, "infer_seg": 2}
FOLDERS = ("cam/maps", "pseudo/masks", "seg/predictions")


def _overlay(workflow, path: Path, shards: dict[str, int]) -> Path:
    baseline_only = {"datasets": {"synth": {"experiments": ["baseline"]}}}
    return workflow.overlay(path, baseline_only | {"shards": shards})


def _tree(folder: Path) -> dict[str, bytes]:
    """Its files but Snakemake's hidden .snakemake_timestamp."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


def test_sharded_dag_scatters_and_gathers(tmp_path, workflow):
    overlay = _overlay(workflow, tmp_path / "k.yaml", {"infer_cam": 3, "pseudo_labels": 2})
    result = workflow.run(tmp_path, "-n", "results/synth/miou.csv", "--configfile", str(overlay))
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = workflow.jobs(result.stdout)
    counts = {rule: sum(r == rule for r, _ in jobs) for rule, _ in jobs}
    assert counts["infer_cam"] == 3 and counts["make_pseudo_labels"] == 2
    assert counts["gather_infer_cam"] == counts["gather_pseudo_labels"] == 1
    assert counts["infer_seg"] == 1 and "gather_infer_seg" not in counts
    gather = next(block for rule, block in jobs if rule == "gather_infer_cam")
    shards = [f"results/synth/shards/baseline/cam/maps/{k}-of-3" for k in (1, 2, 3)]
    assert f"input: {', '.join(shards)}" in gather
    assert "output: results/synth/baseline/cam/maps" in gather


@pytest.mark.slow
def test_two_shards_give_the_unsharded_outputs(tmp_path, workflow):
    outputs = {}
    for k in (1, 2):
        workdir = tmp_path / f"k{k}"
        workdir.mkdir()
        overlay = _overlay(workflow, workdir / "k.yaml", {key: k for key in SHARDED})
        args = ["--cores", "2", "results/synth/miou.csv", "--configfile", str(workflow.tiny)]
        result = workflow.run(workdir, *args, "--configfile", str(overlay))
        assert result.returncode == 0, result.stderr[-3000:]
        experiment = workdir / "results" / "synth" / "baseline"
        outputs[k] = {folder: _tree(experiment / folder) for folder in FOLDERS}
        outputs[k]["miou.csv"] = (workdir / "results" / "synth" / "miou.csv").read_bytes()
        manifest = json.loads((experiment / "manifest.json").read_text())
        outputs[k]["manifest"] = manifest
    for folder in FOLDERS:
        assert len(outputs[1][folder]) > 1
        assert outputs[2][folder] == outputs[1][folder], folder
    assert outputs[2]["miou.csv"] == outputs[1]["miou.csv"]
    shards = tmp_path / "k2" / "results" / "synth" / "shards" / "baseline"
    assert sorted(p.name for p in (shards / "cam" / "maps").iterdir()) == ["1-of-2", "2-of-2"]
    assert not (tmp_path / "k1" / "results" / "synth" / "shards").exists()
    infer_cam = outputs[2]["manifest"]["stages"]["baseline/infer_cam"]  # provenance
    assert infer_cam["log"] == "logs/infer_cam/synth/baseline/1-of-2.log"
    assert list(infer_cam["artifacts"]) == ["results/synth/baseline/cam/maps"]
    assert outputs[2]["manifest"]["config_hash"] == outputs[1]["manifest"]["config_hash"]
