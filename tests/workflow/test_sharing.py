"""Shareable results in the workflow: exports planned, COCO conversion (the export round trip
and the seeds: test_tiny_run.py)."""

from __future__ import annotations

import json

from wsss.data.coco import COCO_CATEGORIES, COCO_CLASSES


def test_export_and_verify_are_planned(tmp_path, workflow):
    result = workflow.run(tmp_path, "-n", "exports/synth/ccnet.verified", "exports/synth.tar.gz")
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = workflow.jobs(result.stdout)
    rules = {rule for rule, _ in jobs}
    assert {"export", "export_dataset", "verify", "record_provenance"} <= rules
    export = next(block for rule, block in jobs if rule == "export")
    assert "results/synth/ccnet/manifest.json" in export.split("output:")[0]
    manifests = [block for rule, block in jobs if rule == "record_provenance"]
    assert any("experiment=ccnet" in block for block in manifests)


def test_missing_coco_source_says_which_key(tmp_path, workflow):
    result = workflow.run(tmp_path, "-n", "results/coco/miou.csv")
    assert result.returncode != 0
    out = result.stderr + result.stdout
    assert "datasets.coco.coco.source is not set" in out
    assert "annotations/instances_train2014.json" in out


def test_coco_conversion_and_check_as_rules(tmp_path, coco_tree, workflow):
    source = tmp_path / "coco2014"
    categories = [{"id": i, "name": name} for i, name in COCO_CATEGORIES]
    coco_tree(source, categories)
    overlay = workflow.overlay(
        tmp_path / "coco.yaml", {"datasets": {"coco": {"coco": {"source": str(source)}}}}
    )
    planned = workflow.run(tmp_path, "-n", "results/coco/miou.csv", "--configfile", str(overlay))
    assert planned.returncode == 0, planned.stderr + planned.stdout
    rules = {rule for rule, _ in workflow.jobs(planned.stdout)}
    assert {"convert_coco", "check_dataset", "train_cam", "make_pseudo_labels"} <= rules
    assert {"train_seg", "record_provenance", "collect_metrics"} <= rules
    target = "results/coco/dataset_index.json"
    result = workflow.run(tmp_path, "--cores", "1", target, "--configfile", str(overlay))
    assert result.returncode == 0, result.stderr[-3000:]
    index = json.loads((tmp_path / target).read_text())
    assert index["classes"] == list(COCO_CLASSES)
    assert [len(index["splits"][s]) for s in ("train", "val")] == [2, 2]
    converted = tmp_path / "results" / "coco" / "dataset"
    assert (converted / "JPEGImages" / "COCO_val2014_000000000001.jpg").is_symlink()
