"""atomic_dir: a stage's output folder is replaced whole or not at all; evaluations refuse to
score nothing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from wsss.data.voc import voc_palette
from wsss.io import save_label_png
from wsss.stages.cam import run_eval_cam
from wsss.stages.common import DatasetIndex, atomic_dir
from wsss.stages.pseudo import run_eval_pseudo_labels
from wsss.stages.seg import run_eval_seg


def test_atomic_dir_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "parent" / "out"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("previous")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("boom")
    assert os.listdir(target.parent) == ["out"]
    assert os.listdir(target) == ["old.txt"]
    assert (target / "old.txt").read_text() == "previous"


def test_atomic_dir_success_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "parent" / "out"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("previous")
    with atomic_dir(target) as tmp:
        assert tmp != target and not (tmp / "old.txt").exists()
        (tmp / "new.txt").write_text("fresh")
    assert os.listdir(target.parent) == ["out"]
    assert os.listdir(target) == ["new.txt"]


def test_atomic_dir_discards_stale_temp_dir(tmp_path: Path) -> None:
    target = tmp_path / "out"
    stale = tmp_path / ".out.tmp"  # left by a killed run
    stale.mkdir()
    (stale / "junk.txt").write_text("x")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("fresh")
    assert os.listdir(tmp_path) == ["out"]
    assert os.listdir(target) == ["new.txt"]


def test_atomic_dir_creates_missing_parent(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    assert (target / "x").read_text() == "1"
    assert os.listdir(target.parent) == ["out"]


def _eval_of_split(name: str, index: Path, tmp_path: Path, split: str) -> Path:
    """Run one evaluation stage on ``split``; returns its metrics path."""
    out, common = tmp_path / f"{name}.csv", dict(dataset="toy", experiment="exp", split=split)
    root = tmp_path / "voc"
    if name == "cam":
        run_eval_cam(
            index, root, tmp_path / "cams", out, tmp_path / "curve.csv",
            gt_dir="SegmentationClass", bg_threshold=0.3,
            sweep={"start": 0.1, "stop": 0.9, "step": 0.1}, **common,
        )  # fmt: skip
    elif name == "pseudo":
        run_eval_pseudo_labels(
            index, root, tmp_path / "pred", out, gt_dir="SegmentationClass", bg_threshold=0.3,
            **common,
        )  # fmt: skip
    else:
        run_eval_seg(index, root, tmp_path / "pred", out, gt_dir="SegmentationClass", **common)
    return out


@pytest.mark.parametrize("name", ["cam", "pseudo", "seg"])
def test_evaluation_of_an_empty_split_is_refused(tmp_path: Path, name: str) -> None:
    """An empty val split wrote a miou.csv row with a blank mIoU and exited 0."""
    index = tmp_path / "index.json"
    DatasetIndex.write(index, classes=["background", "a"], splits={"val": []}, labels={})
    with pytest.raises(ValueError, match=rf"^nothing to evaluate: split 'val' in {index} has no"):
        _eval_of_split(name, index, tmp_path, "val")
    assert not (tmp_path / f"{name}.csv").exists()


def test_evaluation_without_labelled_pixels_is_refused(tmp_path: Path) -> None:
    root, index = tmp_path / "voc", tmp_path / "index.json"
    gt = np.full((4, 5), 255, np.uint8)  # every pixel ignored: nothing to score
    save_label_png(root / "SegmentationClass" / "x1.png", gt, voc_palette())
    save_label_png(tmp_path / "pred" / "x1.png", np.zeros_like(gt), voc_palette())
    DatasetIndex.write(
        index, classes=["background", "a"], splits={"val": ["x1"]}, labels={"x1": np.zeros(1)}
    )
    with pytest.raises(ValueError, match="seg evaluation of toy/exp on split 'val' counted no"):
        _eval_of_split("seg", index, tmp_path, "val")
    assert not (tmp_path / "seg.csv").exists()
