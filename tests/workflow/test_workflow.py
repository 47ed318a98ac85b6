"""The Snakemake workflow: lint, config errors, dry runs (VOC, Cityscapes, reused CAMs and masks)
and a dataset fault stopping the run before training (the tiny end-to-end run: test_tiny_run.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.workflow.conftest import REPO
from wsss.data.synthetic import generate
from wsss.fetch.pretrained import model_entries


def scratch_voc(root: Path) -> dict:
    """A VOC overlay that trains every model from scratch (no ImageNet weights to fetch)."""
    voc = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]["voc"]
    overlay: dict = {"root": str(root), "allow_scratch": True}
    for key, _ in model_entries(voc, "voc"):
        node = overlay
        for part in key.split(".")[1:]:
            node = node.setdefault(part, {})
        node["pretrained"] = "none"
    return {"datasets": {"voc": overlay}}


def test_lint_passes(workflow):
    result = subprocess.run(
        [str(workflow.snakemake), "--lint"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_config_key_is_named(tmp_path, workflow):
    overlay = workflow.overlay(
        tmp_path / "bad.yaml", {"datasets": {"synth": {"cam": {"trian": {}}}}}
    )
    result = workflow.run(tmp_path, "-n", "--configfile", str(overlay))
    assert result.returncode != 0
    assert "trian" in result.stderr + result.stdout


def test_dangling_name_is_named(tmp_path, workflow):
    overlay = workflow.overlay(
        tmp_path / "bad.yaml", {"experiments": {"baseline": {"seg_model": "unet"}}}
    )
    result = workflow.run(tmp_path, "-n", "--configfile", str(overlay))
    assert result.returncode != 0
    assert "experiments.baseline.seg_model: 'unet'" in result.stderr + result.stdout


def test_missing_voc_root_says_which_key(tmp_path, workflow):
    result = workflow.run(tmp_path, "-n", "results/voc/miou.csv")
    assert result.returncode != 0
    out = result.stderr + result.stdout
    assert "datasets.voc.root is not set" in out
    assert "JPEGImages/" in out and "ImageSets/Segmentation" in out


def test_voc_dry_run_on_generated_tree(tmp_path, workflow):
    root = tmp_path / "VOC2012"
    generate(root, seed=1, num_train_aug=6, num_train=3, num_val=3)
    overlay = workflow.overlay(tmp_path / "voc.yaml", {"datasets": {"voc": {"root": str(root)}}})
    result = workflow.run(tmp_path, "-n", "results/voc/miou.csv", "--configfile", str(overlay))
    assert result.returncode == 0, result.stderr + result.stdout
    for rule in (
        "check_dataset",
        "train_cam",
        "infer_cam",
        "eval_cam",
        "make_pseudo_labels",
        "eval_pseudo_labels",
        "train_seg",
        "infer_seg",
        "eval_seg",
        "collect_metrics",
    ):
        assert rule in result.stdout, rule


def test_missing_saliency_folder_is_named_before_any_work(tmp_path, workflow):
    root = tmp_path / "VOC2012"
    generate(root, seed=1, num_train_aug=6, num_train=3, num_val=3)
    shutil.rmtree(root / "SALImages")
    no_source = {"datasets": {"voc": {"root": str(root), "saliency_source": None}}}
    overlay = workflow.overlay(tmp_path / "voc.yaml", no_source)
    result = workflow.run(tmp_path, "-n", "results/voc/miou.csv", "--configfile", str(overlay))
    assert result.returncode != 0
    out = result.stderr + result.stdout
    assert f"needs saliency maps in {root}/SALImages: PFAN" in out
    assert "saliency_source: pfan_voc" in out
    assert "datasets.voc.experiments: ['baseline', 'oracle', 'ccnet', 'pcaa'" in out
    # with a source configured, the dry run schedules the fetch instead
    overlay = workflow.overlay(tmp_path / "voc.yaml", {"datasets": {"voc": {"root": str(root)}}})
    result = workflow.run(tmp_path, "-n", "results/voc/miou.csv", "--configfile", str(overlay))
    assert result.returncode == 0, result.stderr
    assert "rule fetch_saliency:" in result.stdout


def test_missing_cityscapes_root_says_which_key(tmp_path, workflow):
    result = workflow.run(tmp_path, "-n", "results/cityscapes/miou.csv")
    assert result.returncode != 0
    out = result.stderr + result.stdout
    assert "datasets.cityscapes.root is not set" in out
    assert "leftImg8bit/<split>/<city>/ and gtFine/train/<city>/" in out


def test_cityscapes_dry_run_on_generated_tree(tmp_path, cityscapes_tree, workflow):
    root = tmp_path / "cityscapes"
    cityscapes_tree(root)
    overlay = workflow.overlay(
        tmp_path / "cs.yaml", {"datasets": {"cityscapes": {"root": str(root)}}}
    )
    result = workflow.run(
        tmp_path, "-n", "results/cityscapes/miou.csv", "--configfile", str(overlay)
    )
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = workflow.jobs(result.stdout)
    rules = sorted(rule for rule, _ in jobs)
    assert rules == sorted(
        ["fetch_dataset", "check_dataset", "collect_metrics"]
        + ["fetch_weights", "train_seg", "infer_seg", "eval_seg", "record_provenance"] * 2
    )
    weights = sorted(
        b.split("output:")[1].split(",")[0].strip() for r, b in jobs if r == "fetch_weights"
    )
    assert weights == ["weights/csail_resnet101.pth", "weights/openmmlab_resnet50_v1c.pth"]
    check = next(block for rule, block in jobs if rule == "check_dataset")
    assert "results/cityscapes/fetched.json" in check.split("output:")[0]
    collect = next(block for rule, block in jobs if rule == "collect_metrics")
    inputs = collect.split("input:")[1].split("output:")[0]
    assert sorted(p.strip() for p in inputs.split(",")) == sorted(
        f"results/cityscapes/{name}/{file}"
        for name in ("oracle_ccnet", "oracle_pcaa")
        for file in ("seg/eval/metrics.csv", "manifest.json")
    )


def test_masks_from_experiment_reuses_masks(tmp_path, workflow):
    result = workflow.run(tmp_path, "-n")
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = workflow.jobs(result.stdout)
    ccnet = {rule: block for rule, block in jobs if "experiment=ccnet" in block}
    # no CAM / pseudo-mask stages
    assert set(ccnet) == {"train_seg", "infer_seg", "eval_seg", "record_provenance"}
    assert "results/synth/baseline/pseudo_labels/masks" in ccnet["train_seg"].split("output:")[0]
    cam_jobs = [block for rule, block in jobs if rule == "train_cam"]
    assert not any("experiment=ccnet" in block for block in cam_jobs)
    assert any("experiment=baseline" in block for block in cam_jobs)
    collect = next(block for rule, block in jobs if rule == "collect_metrics")
    assert "results/synth/ccnet/seg/eval/metrics.csv" in collect
    assert "results/synth/ccnet/cam" not in collect and "ccnet/pseudo" not in collect


@pytest.mark.parametrize("method", ["irn", "affinitynet"])
def test_cams_from_experiment_refines_the_baseline_cams(tmp_path, method, workflow):
    result = workflow.run(tmp_path, "-n", "--configfile", str(workflow.tiny))
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = {
        rule: block
        for rule, block in workflow.jobs(result.stdout)
        if f"experiment={method}" in block
    }
    assert set(jobs) == {
        "make_affinity_labels",
        "train_affinity",
        "random_walk",
        "eval_pseudo_labels",
        "train_seg",
        "infer_seg",
        "eval_seg",
        "record_provenance",
    }
    for rule in ("make_affinity_labels", "random_walk"):
        assert "results/synth/baseline/cam/maps" in jobs[rule].split("output:")[0]
    # init_from_cam: the affinity network starts from the baseline's CAM classifier
    assert "results/synth/baseline/cam/model.pt" in jobs["train_affinity"].split("output:")[0]
    assert f"results/synth/{method}/pseudo_labels/masks" in jobs["random_walk"].split("log:")[0]


def test_bad_dataset_stops_before_training_with_one_line(tmp_path, workflow):
    root = tmp_path / "VOC2012"
    generate(root, seed=2, num_train_aug=6, num_train=3, num_val=3)
    missing = (root / "ImageSets/Segmentation/train.txt").read_text().split()[1]
    (root / "JPEGImages" / f"{missing}.jpg").unlink()
    overlay = workflow.overlay(tmp_path / "voc.yaml", scratch_voc(root))
    result = workflow.run(
        tmp_path, "--cores", "1", "results/voc/miou.csv", "--configfile", str(overlay)
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "wsss ERROR" in line]
    assert len(errors) == 1 and f"{missing}.jpg" in errors[0], result.stderr[-3000:]
    assert not (tmp_path / "results" / "voc" / "baseline").exists()  # no training started


@pytest.mark.parametrize(
    "overlay_text, expected",
    [
        (
            "datasets: {synth: {cam: {eval: {sweep: {start: 0.9, stop: 0.1, step: 0.01}}}}}\n",
            "config: datasets.synth.cam.eval.sweep: start 0.9 is above stop 0.1",
        ),
        (
            "datasets: {synth: {cam: {train: {lr: .nan}}}}\n",
            "config: datasets.synth.cam.train.lr: nan is not a finite number",
        ),
        (
            "datasets: {synth: {seg: {train: {lr: .inf}}}}\n",
            "config: datasets.synth.seg.train.lr: inf is not a finite number",
        ),
        (
            "datasets: {synth: {seg: {train: {crop_size: 100000}}}}\n",
            "config: datasets.synth.seg.train.crop_size: 100000 exceeds 4096",
        ),
        (
            "report: {gallery_images: 2}\nexperiments: {}\n",
            "config: {overlay}:2: experiments: {{}} changes nothing",
        ),
        (
            "report: {gallery_images: 2}\n\nbogus: 1\n",
            "config: {overlay}:3: unknown key bogus (allowed in <top level>: crf_presets, "
            "datasets, default_datasets, distributed, downloads, experiments, export, report, "
            "resources, shards, weights)",
        ),
    ],
    ids=["reversed_sweep", "nan_lr", "inf_lr", "huge_crop", "empty_experiments", "unknown_key"],
)
def test_bad_config_refused_at_dag_time_in_one_line(tmp_path, workflow, overlay_text, expected):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text(overlay_text)
    result = workflow.run(tmp_path, "-n", "--configfile", str(overlay))
    assert result.returncode != 0
    out = result.stderr + result.stdout
    lines = [line for line in out.splitlines() if line.startswith("config: ")]
    assert len(lines) == 1 and lines[0].startswith(expected.format(overlay=overlay)), out[-3000:]
    assert "Failed validating" not in out  # no schema dump
    assert "rule " not in result.stdout and not (tmp_path / "results").exists()


def test_config_yaml_syntax_error_names_file_and_line(tmp_path, workflow):
    text = (REPO / "config.yaml").read_text()
    text = text.replace("default_datasets: [synth]", "default_datasets: [synth")  # unclosed [
    (tmp_path / "config.yaml").write_text(text)
    result = workflow.run(tmp_path, "-n")
    assert result.returncode != 0
    out = result.stderr + result.stdout
    lines = [line for line in out.splitlines() if line.startswith("config: ")]
    assert len(lines) == 1, out[-3000:]
    start = text.splitlines().index("default_datasets: [synth") + 1
    assert re.match(
        rf"config: config\.yaml:\d+: not valid YAML \(while parsing a flow sequence started on "
        rf"line {start}, expected ',' or '\]'",
        lines[0],
    ), lines[0]
    assert "not valid JSON or YAML" not in out
