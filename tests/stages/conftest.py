"""What the stage tests share: the tiny model and training settings, a generated VOC-layout tree
and its index (built once per session), hand-made trees with CAMs, and checkpoint checks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from wsss.data import synthetic
from wsss.data.voc import voc_palette
from wsss.io import load_checkpoint, save_cam_npz, save_label_png
from wsss.stages.common import DatasetIndex
from wsss.stages.dataset import run_check_dataset
from wsss.stages.training import load_model

CPU = torch.device("cpu")
SPLITS = {
    "train_aug": "SegmentationClassAug",
    "train": "SegmentationClass",
    "val": "SegmentationClass",
}
SYNTH_CLASSES = ["background", *synthetic.SHAPE_FAMILIES]
CLASSES4 = ["background", "a", "b", "c"]  # the hand-made trees of write_tree

# A ResNet-10 of width 4 with trainable BN: output stride 8 (segmentation, affinity, PCM CAMs)
# and 16 (the plain CAM classifier of test_cam's cam_model).
TINY_RESNET_W4 = {
    "name": "resnet",
    "depth": 10,
    "output_stride": 8,
    "base_width": 4,
    "frozen_bn": False,
}
TINY_RESNET_W4_OS16 = {**TINY_RESNET_W4, "output_stride": 16}
# PCAA on that backbone: deep stem, uncontracted dilation, one 4 × 4 bin grid
TINY_PCAA = {
    "net": {
        "backbone": {**TINY_RESNET_W4, "deep_stem": True, "contract_dilation": False},
        "bins": [[4, 4]],
        "channels": 8,
        "attention_channels": 4,
        "aux_channels": 4,
    },
    "pretrained": None,
    "loss": {
        "aux_weight": 0.4,
        "ohem": None,
        "cls_weight": 1.0,
        "focal_gamma": 2.0,
        "bin_threshold": 0.01,
    },
}
# Two AdamW steps of batch 2 on 32 px crops, a checkpoint after each
TINY_TRAIN = {
    "steps": 2,
    "batch_size": 2,
    "optimizer": "adamw",
    "lr": 1e-3,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "poly_power": 0.9,
    "lr_mults": {"backbone": 1.0, "head": 1.0},
    "crop_size": 32,
    "scale_range": [0.8, 1.2],
    "jitter": 0.1,
    "num_workers": 0,
    "checkpoint_every": 1,
    "threads": 1,
}


# ---------------------------------------------------------------------------------------------
# Generated trees


def check_synth_tree(root: Path, index: Path, *, check_pixels: bool = True) -> None:
    """``check_dataset`` of a generated tree with its ``cls_labels.csv``, writing ``index``."""
    run_check_dataset(
        root,
        index,
        dataset="synth",
        classes=SYNTH_CLASSES,
        splits=SPLITS,
        labels_file="cls_labels.csv",
        check_pixels=check_pixels,
    )


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated VOC tree (6 train_aug, 3 train, 3 val); tests must not modify it."""
    root = tmp_path_factory.mktemp("synth") / "voc"
    synthetic.generate(
        root,
        seed=0,
        num_train_aug=6,
        num_train=3,
        num_val=3,
        image_size_range=(48, 64),
        scale_range=(0.3, 0.8),
    )
    return root


@pytest.fixture(scope="session")
def synth_index(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("index") / "index.json"
    check_synth_tree(synth_root, path)
    return path


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img)


def split_ids(root: Path, split: str) -> list[str]:
    text = (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def mask_fg(root: Path, image_id: str) -> list[int]:
    """0-based foreground class indices present in the image's SegmentationClassAug mask."""
    values = np.unique(read_png(root / "SegmentationClassAug" / f"{image_id}.png"))
    return sorted(int(v) - 1 for v in values if 1 <= v < len(SYNTH_CLASSES))


def write_gt_cams(root: Path, ids: list[str], out: Path) -> None:
    """CAMs made from the ground truth: each present class's SegmentationClassAug mask blurred
    (σ = 2) and scaled to a peak of 1, written as ``out/<id>.npz``."""
    for image_id in ids:
        mask = np.asarray(Image.open(root / "SegmentationClassAug" / f"{image_id}.png"))
        keys = np.array([c - 1 for c in np.unique(mask) if 0 < c < 255], dtype=np.int64)
        planes = [gaussian_filter((mask == k + 1).astype(np.float32), 2) for k in keys]
        high = np.stack([p / max(p.max(), 1e-6) for p in planes]) if planes else None
        high = np.zeros((0, *mask.shape), np.float32) if high is None else high
        save_cam_npz(out / f"{image_id}.npz", keys=keys, high_res=high)


# ---------------------------------------------------------------------------------------------
# Hand-made trees


def write_tree(
    root: Path, index_path: Path, *, classes: list[str], split: str, images: dict[str, dict]
) -> None:
    """Hand-made tree: JPEG (when given), GT palette PNG, CAM npz under root/cams, and an index."""
    for image_id, spec in images.items():
        if "image" in spec:
            (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
            Image.fromarray(spec["image"]).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        save_label_png(root / "SegmentationClass" / f"{image_id}.png", spec["gt"], voc_palette())
        if "cams" in spec:
            save_cam_npz(
                root / "cams" / f"{image_id}.npz", keys=spec["keys"], high_res=spec["cams"]
            )
    labels = {}
    for image_id, spec in images.items():
        vec = np.zeros(len(classes) - 1, dtype=np.float32)
        vec[np.asarray(spec.get("keys", []), dtype=np.int64)] = 1
        labels[image_id] = vec
    DatasetIndex.write(index_path, classes=classes, splits={split: list(images)}, labels=labels)


def cam_images(seed: int, *, with_rgb: bool) -> dict[str, dict]:
    """Three tiny images with 2, 1 and 0 present classes; CAMs correlated with the GT."""
    rng = np.random.default_rng(seed)
    specs = {}
    for image_id, (h, w), keys in [
        ("img_a", (6, 7), [0, 2]),
        ("img_b", (5, 9), [1]),
        ("img_c", (4, 4), []),
    ]:
        keys = np.array(keys, dtype=np.int64)
        choices = np.array([0, *(keys + 1)], dtype=np.uint8)
        gt = rng.choice(choices, size=(h, w))
        gt[rng.random((h, w)) < 0.15] = 255
        cams = (
            np.stack([0.55 * (gt == k + 1) + 0.45 * rng.random((h, w)) for k in keys])
            if len(keys)
            else np.zeros((0, h, w))
        )
        spec = {"gt": gt, "keys": keys, "cams": cams.astype(np.float32)}
        if with_rgb:
            spec["image"] = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        specs[image_id] = spec
    return specs


# ---------------------------------------------------------------------------------------------
# Checks


def close(a: float, b: float, tol: float = 2e-6) -> bool:
    """Equal within ``tol``, or both NaN."""
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


def assert_checkpoint(path: Path, build, classes: list[str]) -> torch.nn.Module:
    """The checkpoint names ``classes``, loads into the model ``build`` makes with the same
    tensors, and its resume file is gone; returns the model."""
    ckpt = load_checkpoint(path)
    assert ckpt["classes"] == classes
    model = load_model(path, build, CPU)
    state = model.state_dict()
    assert state.keys() == ckpt["state_dict"].keys()
    assert all(torch.equal(state[k], ckpt["state_dict"][k]) for k in state)
    assert not Path(f"{path}.resume").exists()
    return model


def assert_loss_log(path: Path, steps: int) -> None:
    log = pd.read_csv(path)
    assert {"step", "loss", "lr"} <= set(log.columns) and len(log) >= 1
    assert log["step"].iloc[-1] == steps
    assert np.isfinite(log["loss"]).all()
