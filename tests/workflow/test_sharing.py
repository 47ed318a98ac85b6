"""Shareable results in the workflow: exports planned, COCO conversion, seeds (determinism)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

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


@pytest.mark.slow
def test_seeds_run_repeatably_with_mean_and_std_rows(tmp_path, workflow):
    overlay = {
        "experiments": {"oracle": {"seeds": [0, 1]}},
        "datasets": {"synth": {"experiments": ["oracle"]}},
    }
    tables = []
    for name in ("first", "second"):
        workdir = tmp_path / name
        workdir.mkdir()
        seeds = workflow.overlay(workdir / "seeds.yaml", overlay)
        result = workflow.run(
            workdir, "--cores", "2", "--configfile", str(workflow.tiny), str(seeds)
        )
        assert result.returncode == 0, result.stderr[-4000:]
        tables.append(workdir / "results" / "synth" / "miou.csv")
    # CPU, same seeds: bit-identical tables
    assert tables[0].read_bytes() == tables[1].read_bytes()
    table = pd.read_csv(tables[0], dtype={"seed": str})
    assert list(table.seed) == ["0", "1", "mean", "std"]
    assert set(table.experiment) == {"oracle"} and set(table.stage) == {"seg"}
    results = tmp_path / "first" / "results" / "synth"
    # seed 0 is the dataset's seed: the plain folder; seed 1 beside it
    models = [results / run / "seg" / "model.pt" for run in ("oracle", "oracle@1")]
    assert models[0].read_bytes() != models[1].read_bytes()
    manifest = json.loads((results / "oracle@1" / "manifest.json").read_text())
    assert (manifest["experiment"], manifest["run"], manifest["seed"]) == ("oracle", "oracle@1", 1)
    assert manifest["stages"]["oracle@1/train_seg"]["params"]["seed"] == 1
