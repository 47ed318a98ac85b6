"""wsss.workflow.Plan without Snakemake: small hand-written configs and the answers worked out by
hand from them (which run feeds which, the jobs and files a run owns, the settings a stage gets)."""

from __future__ import annotations

import copy
import re

import pytest

from wsss.workflow import Plan
from wsss.workflow.paths import RUN_FILES, run_path, shard_path

CONFIG = {
    "weights": {"cache": "weights/"},
    "crf_presets": {"pseudo": {"unary": "cam"}, "aff": {"unary": "labels", "gt_prob": 0.7}},
    "experiments": {
        "base": {"supervision": "weak", "refine": "crf", "seg_model": "deeplab", "seeds": [0, 5]},
        "rw": {"supervision": "weak", "cams_from": "base", "refine": "irn", "seg_model": "deeplab"},
        "reuse": {"supervision": "weak", "masks_from": "base", "seg_model": "ccnet"},
        "eps": {
            "supervision": "weak",
            "cam_method": "eps",
            "refine": "crf",
            "seg_model": "deeplab",
        },
        "smaf": {
            "supervision": "weak",
            "cam_method": "smaf",
            "teacher": "eps",
            "refine": "crf",
            "seg_model": "deeplab",
        },
        "cda": {
            "supervision": "weak",
            "augment": "cda",
            "instances_from": "base",
            "refine": "crf",
            "seg_model": "deeplab",
        },
        "oracle": {"supervision": "full", "seg_model": "deeplab"},
    },
    "datasets": {
        "d": {
            "seed": 0,
            "root": "data/d",
            "saliency_dir": "sal",
            "splits": {"train": "SegAug", "val": "Seg"},
            "stage_splits": {"train": "train", "eval_train": "train", "eval_val": "val"},
            "cam": {
                "eval": {"bg_threshold": 0.3},
                "model": {"net": {"backbone": "r50"}},
                "train": {},
            },
            "cam_methods": {
                "eps": {"bg_threshold": 0.5, "model": {"net": {"backbone": "r38"}}},
                "smaf": {"loss": {"denoise": "prototype+saliency"}},
            },
            "pseudo_labels": {"bg_threshold": 0.25, "crf": "pseudo"},
            "affinity": {"irn": {"labels": {"crf": "aff"}, "walk": {"bg_threshold": 0.35}}},
            "cda": {"ratio_range": [0.1, 0.5]},
            "seg": {
                "train": {"threads": 2, "num_workers": 1, "crop": 321},
                "infer": {"mode": "whole"},
                "models": {
                    "deeplab": {"net": {"backbone": "r101"}, "pretrained": "imagenet"},
                    "ccnet": {
                        "net": {"backbone": "r101"},
                        "train": {"crop": 769},
                        "infer": {"mode": "x"},
                    },
                },
            },
        },
        "full": {"seed": 3, "experiments": ["oracle"], "seg": {"models": {}}},
    },
}


@pytest.fixture
def plan() -> Plan:
    return Plan(copy.deepcopy(CONFIG))


def test_runs_and_seeds(plan: Plan) -> None:
    # base runs at seeds 0 (its default seed: the plain folder) and 5
    assert plan.runs("d") == ["base", "base@5", "rw", "reuse", "eps", "smaf", "cda", "oracle"]
    assert plan.runs("full") == ["oracle"]
    assert plan.run_seed("d", "base@5") == 5 and plan.run_seed("full", "oracle") == 3
    assert plan.run_seeds("d")["base@5"] == ["base", 5]


def test_which_run_feeds_which(plan: Plan) -> None:
    assert plan.cam_source("d", "rw") == "base" and plan.cam_source("d", "base") == "base"
    assert plan.mask_source("d", "reuse") == "base"
    assert plan.source("d", "smaf", "teacher") == "eps"
    assert plan.seg_masks("d", "reuse") == "results/d/base/pseudo_labels/masks"
    assert plan.seg_masks("d", "oracle") is None


def test_a_seeded_run_takes_its_sources_at_its_seed() -> None:
    config = copy.deepcopy(CONFIG)
    config["experiments"]["rw"]["seeds"] = [0, 5]
    plan = Plan(config)
    assert plan.cam_source("d", "rw@5") == "base@5"
    assert plan.jobs("d", "rw@5")[0] == ("base@5", "train_cam")


def test_jobs_follow_the_sources_in_pipeline_order(plan: Plan) -> None:
    assert plan.jobs("d", "rw") == [
        ("base", "train_cam"),
        ("base", "infer_cam"),
        ("rw", "make_affinity_labels"),
        ("rw", "train_affinity"),
        ("rw", "random_walk"),
        ("rw", "eval_pseudo_labels"),  # CAMs from base: no eval_cam of its own
        ("rw", "train_seg"),
        ("rw", "infer_seg"),
        ("rw", "eval_seg"),
    ]
    assert plan.own_steps("d", "reuse") == ["train_seg", "infer_seg", "eval_seg"]
    assert plan.jobs("d", "smaf")[:3] == [
        ("eps", "train_cam"),
        ("eps", "infer_cam"),
        ("smaf", "train_smaf"),
    ]
    cda = plan.jobs("d", "cda")
    assert cda[: cda.index(("cda", "make_instance_bank"))] == [
        ("base", "train_cam"),
        ("base", "infer_cam"),
        ("base", "make_pseudo_labels"),
    ]
    assert plan.jobs("full", "oracle") == [
        ("oracle", "train_seg"),
        ("oracle", "infer_seg"),
        ("oracle", "eval_seg"),
    ]


def test_metric_files_and_report_inputs(plan: Plan) -> None:
    assert plan.metric_files("d", "base") == [
        "results/d/base/cam/eval/metrics.csv",
        "results/d/base/pseudo_labels/eval/metrics.csv",
        "results/d/base/seg/eval/metrics.csv",
    ]
    assert plan.metric_files("d", "rw") == [
        "results/d/rw/pseudo_labels/eval/metrics.csv",
        "results/d/rw/seg/eval/metrics.csv",
    ]
    assert plan.metric_files("d", "reuse") == ["results/d/reuse/seg/eval/metrics.csv"]
    assert list(plan.curve_files("d")) == ["base", "base@5", "eps", "smaf", "cda"]
    logs = plan.loss_logs("d")
    assert logs["CAM classifier"]["smaf"] == "results/d/smaf/cam/train_log.csv"
    assert list(logs["affinity / boundary network"]) == ["rw"]
    assert plan.gallery_folders("d")["reuse"] == {
        "cams": "results/d/base/cam/maps",
        "masks": "results/d/base/pseudo_labels/masks",
        "predictions": "results/d/reuse/seg/predictions",
    }
    assert plan.gallery_folders("d")["oracle"]["cams"] is None
    assert plan.experiment_facts("d")["base"]["crf"] == "pseudo"
    assert "crf" not in plan.experiment_facts("d")["rw"]
    assert plan.export_entries("full") == [
        "miou.csv",
        "dataset_index.json",
        "report",
        "cost.csv",
        "benchmarks",
        "oracle",
    ]


def test_background_thresholds(plan: Plan) -> None:
    assert plan.cam_bg_threshold("d", "base", ("cam", "eval")) == 0.3
    assert plan.cam_bg_threshold("d", "base", ("pseudo_labels",)) == 0.25
    assert plan.cam_bg_threshold("d", "eps", ("pseudo_labels",)) == 0.5  # the method's own
    assert plan.cam_bg_threshold("d", "smaf", ("cam", "eval")) == 0.3  # smaf sets none
    assert plan.pseudo_bg_threshold("d", "reuse") == 0.25  # base's CRF masks
    assert plan.pseudo_bg_threshold("d", "rw") == 0.35  # the walk's


def test_saliency_is_needed_by_eps_and_saliency_denoising_smaf(plan: Plan) -> None:
    assert [r for r in plan.runs("d") if plan.needs_saliency("d", r)] == ["eps", "smaf"]
    assert plan.saliency_dir("d", "eps") == "sal" and plan.saliency_dir("d", "base") is None
    config = copy.deepcopy(CONFIG)
    config["datasets"]["d"]["cam_methods"]["smaf"]["loss"]["denoise"] = "prototype"
    del config["datasets"]["d"]["saliency_dir"]
    plan = Plan(config)
    assert not plan.needs_saliency("d", "smaf")
    with pytest.raises(ValueError, match=r"^experiment 'eps' \(eps\) needs saliency maps: set "):
        plan.saliency_dir("d", "eps")
    assert plan.runs_without_saliency("d") == ["base", "rw", "reuse", "smaf", "cda", "oracle"]


def test_stage_settings(plan: Plan) -> None:
    assert plan.cam_settings("d", "eps", "model") == {"net": {"backbone": "r38"}}
    assert plan.cam_settings("d", "base", "model") == {"net": {"backbone": "r50"}}
    assert plan.cam_settings("d", "smaf", "model") is None
    assert plan.cda("d", "cda") == {"ratio_range": [0.1, 0.5], "bank": "results/d/cda/cda/bank"}
    assert plan.cda("d", "base") is None
    assert plan.crf_preset("d") == {"unary": "cam"}
    assert plan.affinity_crf_preset("d", "rw") == {"unary": "labels", "gt_prob": 0.7}
    assert plan.seg_model("d", "reuse") == {"net": {"backbone": "r101"}}
    assert plan.seg_settings("d", "reuse", "train") == {"threads": 2, "num_workers": 1, "crop": 769}
    assert plan.split_masks("d", "eval_val") == "Seg"


def test_weights_files() -> None:
    plan = Plan(copy.deepcopy(CONFIG))
    assert plan.weights_file({"pretrained": "none", "net": {"backbone": {}}}) is None
    assert plan.weights_file({"pretrained": "my/net.pth", "net": {"backbone": {}}}) == "my/net.pth"
    resnet50 = {"name": "resnet", "depth": 50}
    model = {"net": {"backbone": resnet50}, "pretrained": "imagenet", "loss": "ce"}
    resolved = plan.with_weights(model)
    assert resolved["pretrained"].startswith("weights/") and resolved["pretrained"].endswith(".pth")
    assert list(resolved) == list(model) and model["pretrained"] == "imagenet"  # a copy


def test_resources_and_gpus() -> None:
    config = copy.deepcopy(CONFIG)
    config["resources"] = {"default": {"mem_mb": 1000}, "train_seg": {"gpu": 2, "runtime": 60}}
    plan = Plan(config)
    assert plan.gpus("train_seg") == 2 and plan.gpus("eval_seg") == 0
    assert plan.resources("train_seg")["gpu"] == 2
    assert plan.resources("eval_seg")["mem_mb"](None, attempt=1) == 1000
    assert Plan(copy.deepcopy(CONFIG)).resources("train_seg") == {}


def test_threads_and_priorities(plan: Plan) -> None:
    train = {"threads": 2, "num_workers": 1}
    assert Plan.training_threads(train, gpus=0, cores=8) == 3
    assert Plan.training_threads(train, gpus=2, cores=8) == 6
    assert Plan.training_threads(train, gpus=4, cores=8) == 8
    assert plan.seg_train_threads("d", "oracle", gpus=0, cores=8) == 1  # beside the CAM chain
    assert plan.seg_train_threads("d", "base", gpus=0, cores=8) == 3
    assert plan.seg_train_priority("base") == 1 and plan.seg_train_priority("oracle") == 0


def test_run_pattern() -> None:
    plan = Plan(copy.deepcopy(CONFIG))
    smaf = plan.run_pattern(lambda spec: spec.get("cam_method") == "smaf")
    assert re.fullmatch(smaf, "smaf@12") and not re.fullmatch(smaf, "smaf@x")
    assert not re.fullmatch(smaf, "eps")
    assert plan.run_pattern(lambda spec: False) == "(?!)"


def test_paths_table() -> None:
    assert run_path("pseudo_masks", "d", "r") == "results/d/r/pseudo_labels/masks"
    assert run_path("cam_maps") == "results/{dataset}/{experiment}/cam/maps"
    assert shard_path("seg_predictions", "2-of-3", "d", "r") == (
        "results/d/shards/r/seg/predictions/2-of-3"
    )
    assert len(set(RUN_FILES.values())) == len(RUN_FILES)
