"""Affinity refinement stages end to end on a tiny generated dataset: confident labels, training
(initialised from a CAM checkpoint), random walk → pseudo masks that train_seg can read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import CRF_LABEL_IRN
from tests.stages.conftest import (
    CPU,
    TINY_RESNET_W4,
    TINY_TRAIN,
    check_synth_tree,
    write_gt_cams,
)
from wsss.data import synthetic
from wsss.io import load_checkpoint
from wsss.stages.affinity import run_make_affinity_labels, run_random_walk, run_train_affinity
from wsss.stages.cam import run_train_cam

CRF = {**CRF_LABEL_IRN, "iterations": 2}
SOFTMAX_CRF = {k: v for k, v in CRF.items() if k != "gt_prob"} | {"unary": "softmax"}
METHODS = {
    "irn": {
        "labels": {"fg_threshold": 0.6, "bg_threshold": 0.3},
        "crf": CRF,
        "model": {
            "net": {"backbone": TINY_RESNET_W4, "channels": 8},
            "pretrained": None,
            "init_from_cam": True,
        },
        "radius": 4,
        "walk": {"radius": 3, "beta": 10.0, "exp_times": 4, "bg_threshold": 0.25},
    },
    "affinitynet": {
        "labels": {"alpha_low": 4.0, "alpha_high": 32.0},
        "crf": SOFTMAX_CRF,
        "model": {
            "net": {"backbone": TINY_RESNET_W4, "feature_channels": [4, 4, 8], "out_channels": 8},
            "pretrained": None,
            "init_from_cam": True,
        },
        "radius": 3,
        "walk": {"radius": 3, "alpha": 16.0, "beta": 8.0, "logt": 4},
    },
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A generated VOC tree, its index, blurred ground-truth CAMs and a 2-step CAM model."""
    base = tmp_path_factory.mktemp("affinity")
    root = base / "voc"
    synthetic.generate(
        root,
        seed=1,
        num_train_aug=6,
        num_train=3,
        num_val=2,
        image_size_range=(48, 64),
        scale_range=(0.3, 0.8),
    )
    index = base / "index.json"
    check_synth_tree(root, index)
    cams = base / "cams"
    write_gt_cams(root, json.loads(index.read_text())["splits"]["train_aug"], cams)
    cam_model = base / "cam.pt"
    run_train_cam(
        index,
        root,
        cam_model,
        base / "cam_loss.csv",
        split="train_aug",
        model={"net": {"backbone": TINY_RESNET_W4, "detach_until": None}, "pretrained": None},
        train=TINY_TRAIN,
        seed=0,
        device=CPU,
    )
    return {"root": root, "index": index, "cams": cams, "cam_model": cam_model, "base": base}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_affinity_refinement_end_to_end(tiny: dict[str, Path], method: str) -> None:
    spec, out = METHODS[method], tiny["base"] / method
    run_make_affinity_labels(
        tiny["index"],
        tiny["root"],
        tiny["cams"],
        out / "labels",
        split="train_aug",
        method=method,
        labels=spec["labels"],
        crf=spec["crf"],
    )
    ids = json.loads(tiny["index"].read_text())["splits"]["train_aug"]
    for image_id in ids:
        label = np.asarray(Image.open(out / "labels" / f"{image_id}.png"))
        gt = np.asarray(Image.open(tiny["root"] / "SegmentationClassAug" / f"{image_id}.png"))
        assert label.shape == gt.shape
        assert set(np.unique(label)) <= set(np.unique(gt)) | {0, 255}

    train = {**TINY_TRAIN, "lr_mults": {"head": 1.0}} if method == "irn" else TINY_TRAIN
    run_train_affinity(
        tiny["index"],
        tiny["root"],
        out / "labels",
        tiny["cam_model"],
        out / "model.pt",
        out / "loss.csv",
        split="train_aug",
        method=method,
        model=spec["model"],
        train=train,
        radius=spec["radius"],
        seed=0,
        device=CPU,
    )
    state = load_checkpoint(out / "model.pt")["state_dict"]
    cam_state = load_checkpoint(tiny["cam_model"])["state_dict"]
    if method == "irn":  # the frozen backbone is exactly the CAM classifier's
        key = "backbone.layer1.0.conv1.weight"
        assert torch.equal(state[key], cam_state[key])

    run_random_walk(
        tiny["index"],
        tiny["root"],
        tiny["cams"],
        out / "model.pt",
        out / "masks",
        split="train_aug",
        method=method,
        walk=spec["walk"],
        device=CPU,
    )
    manifest = json.loads((out / "masks" / "manifest.json").read_text())
    assert manifest["count"] == len(ids) and manifest["method"] == method
    for image_id in ids:
        mask = Image.open(out / "masks" / f"{image_id}.png")
        assert mask.mode == "P"
        pred = np.asarray(mask)
        gt = np.asarray(Image.open(tiny["root"] / "SegmentationClassAug" / f"{image_id}.png"))
        assert pred.shape == gt.shape
        assert set(np.unique(pred)) <= set(np.unique(gt)) - {255} | {0}


def test_init_from_cam_with_another_backbone_is_refused(tiny: dict[str, Path]) -> None:
    spec = METHODS["irn"]
    run_make_affinity_labels(
        tiny["index"],
        tiny["root"],
        tiny["cams"],
        tiny["base"] / "labels_x",
        split="train_aug",
        method="irn",
        labels=spec["labels"],
        crf=spec["crf"],
    )
    net = {**spec["model"]["net"], "backbone": {**TINY_RESNET_W4, "base_width": 8}}
    model = {**spec["model"], "net": net}
    with pytest.raises(ValueError, match="cam.pt has a different backbone"):
        run_train_affinity(
            tiny["index"],
            tiny["root"],
            tiny["base"] / "labels_x",
            tiny["cam_model"],
            tiny["base"] / "x.pt",
            tiny["base"] / "x.csv",
            split="train_aug",
            method="irn",
            model=model,
            train={**TINY_TRAIN, "lr_mults": {"head": 1.0}},
            radius=4,
            seed=0,
            device=CPU,
        )
