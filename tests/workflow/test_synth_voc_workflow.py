"""synth_voc's DAG: the ImageNet stand-in is pre-trained before any model that starts from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wsss.fetch.stand_in import check_stand_in, stand_in_path


def test_dry_run_pretrains_each_backbone_first(tmp_path, workflow):
    result = workflow.run(tmp_path, "-n", "--cores", "2", "results/synth_voc/miou.csv")
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = workflow.jobs(result.stdout)
    rules = [rule for rule, _ in jobs]
    assert rules.count("make_pretrain_corpus") == 1
    pretrained = sorted(
        block.split("output: ")[1].split(",")[0]
        for rule, block in jobs
        if rule == "pretrain_backbone"
    )
    assert pretrained == [
        "results/synth_voc/pretrain/resnet10_w16.pth",
        "results/synth_voc/pretrain/resnet10_w16_deep.pth",
    ]
    trainers = [(r, b) for r, b in jobs if r in ("train_cam", "train_seg", "train_affinity")]
    assert {r for r, _ in trainers} == {"train_cam", "train_seg", "train_affinity"}
    for rule, block in trainers:
        inputs = block.split("input: ")[1].split("\n")[0]
        assert "results/synth_voc/pretrain/" in inputs, (rule, inputs)
        assert "Input files updated by another job" in block


def test_stand_in_references_are_checked() -> None:
    backbone = {"name": "resnet", "depth": 10, "output_stride": 32, "base_width": 16}
    spec = {
        "pretrain": {"backbones": {"r10": backbone}},
        "cam": {"model": {"net": {"backbone": {**backbone, "output_stride": 8, "frozen_bn": True}},
                          "pretrained": stand_in_path("d", "r10")}},
    }  # fmt: skip
    check_stand_in("d", spec)  # same architecture: stride and BN change no keys
    spec["cam"]["model"]["pretrained"] = stand_in_path("d", "r18")
    with pytest.raises(ValueError) as info:
        check_stand_in("d", spec)
    assert str(info.value) == (
        "datasets.d.cam.model.pretrained: results/d/pretrain/r18.pth is written by no "
        "datasets.d.pretrain.backbones entry (it has ['r10'])"
    )
    spec["cam"]["model"] = {
        "net": {"backbone": {**backbone, "base_width": 24}},
        "pretrained": stand_in_path("d", "r10"),
    }
    with pytest.raises(
        ValueError, match="r10.pth holds a .*'base_width': 16.* the model's is .*24"
    ):
        check_stand_in("d", spec)


def test_benchmark_runs_every_experiment_and_the_demo_leaves_out_the_random_walks(
    tmp_path, workflow
):
    """synth_voc (make benchmark) trains a seg model for every experiment of config.yaml, the
    random walks included; synth (make demo) for all but those two."""
    config = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())
    experiments = set(config["experiments"])
    assert {"irn", "affinitynet"} <= experiments
    for dataset, expected in (
        ("synth_voc", experiments),
        ("synth", experiments - {"irn", "affinitynet"}),
    ):
        result = workflow.run(tmp_path, "-n", "--cores", "2", f"results/{dataset}/miou.csv")
        assert result.returncode == 0, result.stderr + result.stdout
        trained = {
            block.split("wildcards: ")[1].split("experiment=")[1].split(",")[0].split("\n")[0]
            for rule, block in workflow.jobs(result.stdout)
            if rule == "train_seg"
        }
        assert trained == expected, dataset
