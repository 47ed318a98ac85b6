"""Sharded stages in the workflow: the shard and merge_shards jobs of a sharded DAG. (That sharded
outputs equal unsharded ones is checked by the tiny end-to-end test, whose second run shards.)"""

from __future__ import annotations

from pathlib import Path


def _overlay(workflow, path: Path, shards: dict[str, int]) -> Path:
    baseline_only = {"datasets": {"synth": {"experiments": ["baseline"]}}}
    return workflow.overlay(path, baseline_only | {"shards": shards})


def test_sharded_dag_shards_and_merges(tmp_path, workflow):
    overlay = _overlay(workflow, tmp_path / "k.yaml", {"infer_cam": 3, "pseudo_labels": 2})
    result = workflow.run(tmp_path, "-n", "results/synth/miou.csv", "--configfile", str(overlay))
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = workflow.jobs(result.stdout)
    counts = {rule: sum(r == rule for r, _ in jobs) for rule, _ in jobs}
    assert counts["infer_cam"] == 3 and counts["make_pseudo_labels"] == 2
    assert counts["merge_shards_infer_cam"] == counts["merge_shards_pseudo_labels"] == 1
    assert counts["infer_seg"] == 1 and "merge_shards_infer_seg" not in counts
    gather = next(block for rule, block in jobs if rule == "merge_shards_infer_cam")
    shards = [f"results/synth/shards/baseline/cam/maps/{k}-of-3" for k in (1, 2, 3)]
    assert f"input: {', '.join(shards)}" in gather
    assert "output: results/synth/baseline/cam/maps" in gather
