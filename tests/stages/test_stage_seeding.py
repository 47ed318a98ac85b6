"""A training stage's weights are a function of its arguments: ``seed`` fixes the network's
initialisation and the training's random draws whatever the calling process did to torch's
global generator before (the rule scripts seed it first; a library caller need not)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.stages.conftest import CPU, TINY_RESNET_W4, TINY_RESNET_W4_OS16, TINY_TRAIN
from tests.stages.test_seg import SEG_MODEL_CONFIGS
from wsss.io import load_checkpoint
from wsss.stages.affinity import run_train_affinity
from wsss.stages.cam import run_train_cam
from wsss.stages.seg import run_train_seg


def _cam(index: Path, root: Path, out: Path, seed: int) -> None:
    run_train_cam(
        index, root, out / "m.pt", out / "loss.csv", split="train_aug",
        model={"net": {"backbone": TINY_RESNET_W4_OS16, "detach_until": None}, "pretrained": None},
        train=TINY_TRAIN, seed=seed, device=CPU,
    )  # fmt: skip


def _seg(index: Path, root: Path, out: Path, seed: int) -> None:
    run_train_seg(
        index, root, out / "m.pt", out / "loss.csv", split="train_aug",
        mask_dir="SegmentationClassAug", model_name="deeplab", model=SEG_MODEL_CONFIGS["deeplab"],
        train=TINY_TRAIN, seed=seed, device=CPU,
    )  # fmt: skip


def _boundary(index: Path, root: Path, out: Path, seed: int) -> None:
    # the ground-truth masks stand in for confident-region labels (same values: 0..K, 255)
    run_train_affinity(
        index, root, root / "SegmentationClassAug", None, out / "m.pt", out / "loss.csv",
        split="train_aug", method="irn",
        model={"net": {"backbone": TINY_RESNET_W4, "channels": 8}, "pretrained": None,
               "init_from_cam": False},
        train={**TINY_TRAIN, "lr_mults": {"head": 1.0}}, radius=4, seed=seed, device=CPU,
    )  # fmt: skip


STAGES: dict[str, Callable[[Path, Path, Path, int], None]] = {
    "train_cam": _cam,
    "train_seg": _seg,
    "train_affinity": _boundary,
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_weights_depend_on_the_seed_not_on_the_callers_generator(
    stage: str, synth_root: Path, synth_index: Path, tmp_path: Path
) -> None:
    weights = {}
    for name, caller_seed, seed in (("a", 11, 0), ("b", 12, 0), ("other_seed", 11, 1)):
        torch.manual_seed(caller_seed)
        torch.rand(7)  # whatever the caller drew before
        out = tmp_path / name
        out.mkdir()
        STAGES[stage](synth_index, synth_root, out, seed)
        weights[name] = load_checkpoint(out / "m.pt")["state_dict"]
    same, other = weights["a"], weights["b"]
    assert same.keys() == other.keys()
    for key, value in same.items():
        assert torch.equal(value, other[key]), key
    # and the seed does reach the weights: another seed, other weights
    assert any(
        value.is_floating_point() and not torch.equal(value, weights["other_seed"][key])
        for key, value in same.items()
    )
