"""check_dataset on a generated VOC tree: the index it writes, and missing files named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.stages.conftest import SPLITS, SYNTH_CLASSES, mask_fg, split_ids
from wsss.io import read_json
from wsss.stages.common import DatasetIndex
from wsss.stages.dataset import run_check_dataset


@pytest.mark.parametrize("labels_file", [None, "cls_labels.csv"])
def test_check_dataset_writes_index(
    synth_root: Path, tmp_path: Path, labels_file: str | None
) -> None:
    out = tmp_path / "index.json"
    run_check_dataset(
        synth_root,
        out,
        dataset="synth",
        classes=SYNTH_CLASSES,
        splits=SPLITS,
        labels_file=labels_file,
        check_pixels=True,
    )
    data = read_json(out)
    assert data["classes"] == SYNTH_CLASSES
    assert data["splits"] == {s: split_ids(synth_root, s) for s in SPLITS}
    all_ids = set(split_ids(synth_root, "train_aug")) | set(split_ids(synth_root, "val"))
    assert len(all_ids) == 9
    assert data["labels"] == {i: mask_fg(synth_root, i) for i in sorted(all_ids)}
    index = DatasetIndex(out)
    some = sorted(all_ids)[0]
    expected = np.zeros(len(SYNTH_CLASSES) - 1, np.float32)
    expected[mask_fg(synth_root, some)] = 1
    assert np.array_equal(index.labels(some), expected)


@pytest.mark.parametrize("root", [None, "does/not/exist"])
def test_check_dataset_missing_root(tmp_path: Path, root: str | None) -> None:
    root = None if root is None else tmp_path / root
    with pytest.raises(FileNotFoundError, match=r"datasets\.voc\.root"):
        run_check_dataset(
            root,
            tmp_path / "index.json",
            dataset="voc",
            classes=SYNTH_CLASSES,
            splits=SPLITS,
            labels_file=None,
            check_pixels=False,
        )
    assert not (tmp_path / "index.json").exists()


def test_check_dataset_missing_image_is_named(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    with open(root / "ImageSets" / "Segmentation" / "val.txt", "a") as handle:
        handle.write("ghost_000042\n")
    with pytest.raises(FileNotFoundError, match=r"ghost_000042\.jpg"):
        run_check_dataset(
            root,
            tmp_path / "index.json",
            dataset="synth",
            classes=SYNTH_CLASSES,
            splits=SPLITS,
            labels_file=None,
            check_pixels=False,
        )
    assert not (tmp_path / "index.json").exists()


def test_check_dataset_missing_mask_is_named(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    victim = split_ids(root, "val")[1]
    (root / "SegmentationClass" / f"{victim}.png").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{victim}\.png"):
        run_check_dataset(
            root,
            tmp_path / "index.json",
            dataset="synth",
            classes=SYNTH_CLASSES,
            splits=SPLITS,
            labels_file=None,
            check_pixels=False,
        )
