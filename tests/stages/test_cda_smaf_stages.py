"""Stage runs of CDA (instance bank, paired training), EPS and SMAF on a generated tree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tests.stages.conftest import (
    CPU,
    SYNTH_CLASSES,
    TINY_RESNET_W4,
    TINY_TRAIN,
    check_synth_tree,
)
from wsss.data import synthetic
from wsss.io import load_cam_npz, load_checkpoint
from wsss.models import build_cam_model
from wsss.stages.cam import run_infer_cam, run_train_cam
from wsss.stages.cda import run_make_instance_bank
from wsss.stages.smaf import run_train_smaf
from wsss.stages.training import load_model

TINY_TRAIN_BATCH4 = {**TINY_TRAIN, "batch_size": 4}
EPS_MODEL = {"net": {"backbone": TINY_RESNET_W4, "embed_channels": 8}, "pretrained": None}
SMAF_LOSS = {
    "bg_score": 0.2,
    "weight": 100.0,
    "denoise": "none",
    "ema_decay": 0.9,
    "prototype_momentum": 0.1,
    "min_pixels": 1,
    "saliency_threshold": 0.5,
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("cda_smaf")
    root = base / "voc"
    synthetic.generate(
        root,
        seed=2,
        num_train_aug=8,
        num_train=3,
        num_val=2,
        image_size_range=(48, 64),
        scale_range=(0.3, 0.8),
        max_objects=1,
    )
    index = base / "index.json"
    check_synth_tree(root, index)
    return {"root": root, "index": index, "base": base}


def _train_eps(tree: dict, out: Path) -> Path:
    run_train_cam(
        tree["index"],
        tree["root"],
        out / "eps.pt",
        out / "eps.csv",
        split="train_aug",
        model=EPS_MODEL,
        train=TINY_TRAIN_BATCH4,
        seed=0,
        device=CPU,
        method="eps",
        loss={"tau": 0.4, "lam": 0.5},
        saliency_dir="SALImages",
    )
    return out / "eps.pt"


def test_instance_bank_keeps_single_class_masks_in_the_ratio(tree, tmp_path):
    ids = (tree["root"] / "ImageSets/Segmentation/train_aug.txt").read_text().split()
    run_make_instance_bank(
        tree["index"],
        tree["root"],
        tree["root"] / "SegmentationClassAug",
        tmp_path / "bank",
        split="train_aug",
        ratio_range=(0.05, 0.7),
    )
    listed = json.loads((tmp_path / "bank" / "index.json").read_text())["instances"]
    expected: dict[str, list[str]] = {str(c): [] for c in range(len(SYNTH_CLASSES) - 1)}
    for image_id in ids:  # the filter, restated
        mask = np.asarray(Image.open(tree["root"] / "SegmentationClassAug" / f"{image_id}.png"))
        values = np.unique(mask)
        if len(values) == 2 and 0.05 <= (mask != 0).mean() <= 0.7:
            expected[str(values[1] - 1)].append(image_id)
            crop = np.asarray(
                Image.open(tmp_path / "bank" / str(values[1] - 1) / f"{image_id}_mask.png")
            )
            rows, cols = np.nonzero(mask)
            assert crop.shape == (np.ptp(rows) + 1, np.ptp(cols) + 1)  # the tight box
    assert listed == expected and sum(map(len, expected.values())) > 0


def test_cda_training_runs_twice_the_steps_on_pairs(tree, tmp_path):
    run_make_instance_bank(
        tree["index"],
        tree["root"],
        tree["root"] / "SegmentationClassAug",
        tmp_path / "bank",
        split="train_aug",
        ratio_range=(0.05, 0.9),
    )
    cda = {"bank": str(tmp_path / "bank"), "paste_mode": "fixed", "max_angle": 90, "size_cap": 0.7}
    for schedule in ("faithful", "fixed"):
        run_train_cam(
            tree["index"],
            tree["root"],
            tmp_path / f"{schedule}.pt",
            tmp_path / f"{schedule}.csv",
            split="train_aug",
            model={"net": {"backbone": TINY_RESNET_W4}, "pretrained": None},
            train=dict(TINY_TRAIN_BATCH4, steps=3),
            seed=0,
            device=CPU,
            cda=dict(cda, schedule=schedule),
        )
    faithful, fixed = (pd.read_csv(tmp_path / f"{s}.csv") for s in ("faithful", "fixed"))
    assert faithful["step"].iloc[-1] == fixed["step"].iloc[-1] == 6  # 2 × steps
    # lr logged at step 6 (index 5): faithful = poly at its last step 2 of 3, fixed = step 5 of 6
    assert np.isclose(faithful["lr"].iloc[-1], 1e-3 * (1 / 3) ** 0.9)
    assert np.isclose(fixed["lr"].iloc[-1], 1e-3 * (1 / 6) ** 0.9)
    with pytest.raises(ValueError, match="CDA pairs train IRN's classifier"):
        run_train_cam(
            tree["index"],
            tree["root"],
            tmp_path / "x.pt",
            tmp_path / "x.csv",
            split="train_aug",
            model=EPS_MODEL,
            train=TINY_TRAIN_BATCH4,
            seed=0,
            device=CPU,
            method="eps",
            loss={"tau": 0.4, "lam": 0.5},
            saliency_dir="SALImages",
            cda=dict(cda, schedule="fixed"),
        )


def test_eps_needs_saliency(tree, tmp_path):
    with pytest.raises(ValueError, match="saliency_dir"):
        run_train_cam(
            tree["index"],
            tree["root"],
            tmp_path / "x.pt",
            tmp_path / "x.csv",
            split="train_aug",
            model=EPS_MODEL,
            train=TINY_TRAIN_BATCH4,
            seed=0,
            device=CPU,
            method="eps",
            loss={"tau": 0.4, "lam": 0.5},
        )


@pytest.mark.parametrize("denoise", ["none", "prototype+saliency"])
def test_eps_then_smaf_self_training(tree, tmp_path, denoise):
    teacher = _train_eps(tree, tmp_path)
    run_infer_cam(
        tree["index"],
        tree["root"],
        teacher,
        tmp_path / "fused",
        split="train_aug",
        scales=[1.0, 0.5],
        flip=True,
        device=CPU,
    )
    run_train_smaf(
        tree["index"],
        tree["root"],
        teacher,
        tmp_path / "fused",
        tmp_path / "smaf.pt",
        tmp_path / "smaf.csv",
        split="train_aug",
        train=dict(TINY_TRAIN_BATCH4, jitter=0.0),
        loss=dict(SMAF_LOSS, denoise=denoise),
        seed=0,
        device=CPU,
        saliency_dir="SALImages",
    )
    ckpt = load_checkpoint(tmp_path / "smaf.pt")
    assert ckpt["model_name"] == "eps"
    assert ckpt["build_kwargs"] == load_checkpoint(teacher)["build_kwargs"]
    assert not any(k.startswith(("ema", "student")) for k in ckpt["state_dict"])
    student = load_model(tmp_path / "smaf.pt", build_cam_model, CPU)
    before = load_model(teacher, build_cam_model, CPU)
    changed = [
        not torch.equal(a, b)
        for a, b in zip(student.state_dict().values(), before.state_dict().values(), strict=True)
    ]
    assert any(changed)  # initialised from the teacher, then trained
    assert len(pd.read_csv(tmp_path / "smaf.csv")) >= 1
    image_id = (tree["root"] / "ImageSets/Segmentation/train_aug.txt").read_text().split()[0]
    fused = load_cam_npz(tmp_path / "fused" / f"{image_id}.npz")
    np.testing.assert_allclose(fused["high_res"].max(axis=(1, 2)), 1.0, atol=1e-4)
