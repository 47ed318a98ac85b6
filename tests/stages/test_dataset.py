"""check_dataset on a generated VOC tree: the index it writes, and missing files named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


def _check(root: Path, out: Path, **kwargs: object) -> None:
    run_check_dataset(
        root,
        out,
        dataset="synth",
        classes=SYNTH_CLASSES,
        splits=SPLITS,
        labels_file=None,
        check_pixels=False,
        **kwargs,
    )


@pytest.mark.parametrize("split", ["val", "train_aug"])
def test_check_dataset_refuses_an_empty_split(synth_root: Path, tmp_path: Path, split: str) -> None:
    """Empty val.txt wrote a blank mIoU row; empty train_aug.txt failed at train_cam unnamed."""
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    split_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    split_file.write_text("\n \n")  # blank lines only
    with pytest.raises(ValueError, match=rf"^{split_file} lists no images"):
        _check(root, tmp_path / "index.json")
    assert not (tmp_path / "index.json").exists()


def test_check_dataset_refuses_repeated_ids(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    split_file = root / "ImageSets" / "Segmentation" / "val.txt"
    ids = split_ids(root, "val")
    split_file.write_text("".join(f"{i}\n" for i in [*ids, ids[2], ids[0], ids[2]]))
    with pytest.raises(ValueError) as caught:
        _check(root, tmp_path / "index.json")
    assert str(caught.value) == (
        f"{split_file} lists 2 id(s) more than once: {', '.join(sorted([ids[0], ids[2]]))}"
    )
    assert not (tmp_path / "index.json").exists()


def test_check_dataset_refuses_an_image_above_max_image_pixels(
    synth_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    sizes = {}
    for split in SPLITS:
        for image_id in split_ids(root, split):
            with Image.open(root / "JPEGImages" / f"{image_id}.jpg") as img:
                sizes[image_id] = img.size
    largest = max(w * h for w, h in sizes.values())
    _check(root, tmp_path / "index.json", max_image_pixels=largest)  # the limit itself passes
    (big,) = [i for i, (w, h) in sizes.items() if w * h == largest][:1]
    width, height = sizes[big]
    with pytest.raises(ValueError) as caught:
        _check(root, tmp_path / "again.json", max_image_pixels=largest - 1)
    message = str(caught.value)
    assert f"{big}.jpg is {width}x{height}" in message
    assert f"datasets.synth.max_image_pixels = {largest - 1}" in message
    assert "\n" not in message
    assert not (tmp_path / "again.json").exists()
