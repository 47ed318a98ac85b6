"""Cityscapes and ADE20K: label conversion on known ids, class lists, and tiny generated
folder trees listed and read correctly, with errors naming what is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.oracles import SPEC_TRAIN_IDS
from wsss.data import PairedSegmentation
from wsss.data.ade20k import ADE20K_CLASSES, ade20k_to_train_ids, list_ade20k
from wsss.data.cityscapes import (
    CITYSCAPES_CLASSES,
    cityscapes_palette,
    label_ids_to_train_ids,
    list_cityscapes,
)


def test_cityscapes_train_ids_on_known_ids():
    ids = np.arange(-1, 40, dtype=np.int32)
    got = label_ids_to_train_ids(ids)
    assert got.dtype == np.uint8 and got.shape == ids.shape
    for label_id, train_id in zip(ids.tolist(), got.tolist(), strict=True):
        assert train_id == SPEC_TRAIN_IDS.get(label_id, 255), label_id
    assert label_ids_to_train_ids(np.array([[7, 26], [0, 255]], dtype=np.uint8)).tolist() == [
        [0, 13],
        [255, 255],
    ]
    with pytest.raises(ValueError, match="integer"):
        label_ids_to_train_ids(np.zeros(3, dtype=np.float32))


def test_ade20k_reduce_zero_label():
    got = ade20k_to_train_ids(np.array([[0, 1], [150, 75]], dtype=np.uint8))
    assert got.dtype == np.uint8 and got.tolist() == [[255, 0], [149, 74]]
    with pytest.raises(ValueError, match="151"):
        ade20k_to_train_ids(np.array([3, 151]))
    with pytest.raises(ValueError, match="integer"):
        ade20k_to_train_ids(np.zeros(2))


def test_class_lists_and_palette():
    assert len(CITYSCAPES_CLASSES) == 19 == len(set(CITYSCAPES_CLASSES))
    assert (CITYSCAPES_CLASSES[0], CITYSCAPES_CLASSES[13]) == ("road", "car")
    assert CITYSCAPES_CLASSES[18] == "bicycle"
    assert len(ADE20K_CLASSES) == 150 == len(set(ADE20K_CLASSES))
    assert (ADE20K_CLASSES[0], ADE20K_CLASSES[12], ADE20K_CLASSES[149]) == (
        "wall",
        "person",
        "flag",
    )
    palette = cityscapes_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert palette[0].tolist() == [128, 64, 128] and palette[13].tolist() == [0, 0, 142]
    assert palette[18].tolist() == [119, 11, 32] and palette[255].tolist() == [0, 0, 0]


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _cityscapes_tree(root: Path) -> None:
    for split, names in {
        "train": ["bonn_000001_000019", "aachen_000000_000019", "aachen_000001_000019"],
        "val": ["lindau_000000_000019"],
    }.items():
        for name in names:
            city = name.split("_")[0]
            rgb = np.full((2, 3, 3), len(name), dtype=np.uint8)
            _png(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", rgb)
            label = np.array([[7, 26, 0], [33, 1, 24]], dtype=np.uint8)
            _png(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", label)


def test_cityscapes_tree_listing_and_dataset(tmp_path):
    _cityscapes_tree(tmp_path)
    pairs = list_cityscapes(tmp_path, "train")
    assert [p.id for p in pairs] == [
        "aachen/aachen_000000_000019",
        "aachen/aachen_000001_000019",
        "bonn/bonn_000001_000019",
    ]
    first = pairs[0]
    assert first.image == tmp_path / "leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png"
    assert first.label == tmp_path / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    assert [p.id for p in list_cityscapes(tmp_path, "val")] == ["lindau/lindau_000000_000019"]
    item = PairedSegmentation(pairs, convert_label=label_ids_to_train_ids)[0]
    assert item["id"] == first.id and item["image"].shape == (2, 3, 3)
    assert item["mask"].dtype == np.uint8
    assert item["mask"].tolist() == [[0, 13, 255], [18, 255, 11]]
    images_only = list_cityscapes(tmp_path, "val", labels=False)
    assert images_only[0].label is None
    assert "mask" not in PairedSegmentation(images_only, convert_label=label_ids_to_train_ids)[0]


def test_cityscapes_missing_parts_are_named(tmp_path):
    _cityscapes_tree(tmp_path)
    with pytest.raises(FileNotFoundError, match="leftImg8bit/test"):
        list_cityscapes(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="gtCoarse/train"):
        list_cityscapes(tmp_path, "train", annotation="gtCoarse")
    missing = tmp_path / "gtFine/train/bonn/bonn_000001_000019_gtFine_labelIds.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="bonn_000001_000019_gtFine_labelIds.png"):
        list_cityscapes(tmp_path, "train")
    assert len(list_cityscapes(tmp_path, "train", labels=False)) == 3
    (tmp_path / "leftImg8bit/empty").mkdir()
    (tmp_path / "gtFine/empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no <city>"):
        list_cityscapes(tmp_path, "empty")


def _ade_tree(root: Path) -> None:
    for split, tag, count in (("training", "train", 3), ("validation", "val", 1)):
        for i in range(count, 0, -1):
            name = f"ADE_{tag}_{i:08d}"
            img_dir = root / "images" / split
            img_dir.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(img_dir / f"{name}.jpg")
            label = np.array([[0, 1], [150, i]], dtype=np.uint8)
            _png(root / "annotations" / split / f"{name}.png", label)


def test_ade20k_tree_listing_errors_and_dataset(tmp_path):
    _ade_tree(tmp_path)
    pairs = list_ade20k(tmp_path, "training")
    assert [p.id for p in pairs] == [f"ADE_train_0000000{i}" for i in (1, 2, 3)]
    assert pairs[1].image == tmp_path / "images/training/ADE_train_00000002.jpg"
    assert pairs[1].label == tmp_path / "annotations/training/ADE_train_00000002.png"
    item = PairedSegmentation(pairs, convert_label=ade20k_to_train_ids)[1]
    assert item["mask"].tolist() == [[255, 0], [149, 1]]
    assert [p.id for p in list_ade20k(tmp_path, "validation")] == ["ADE_val_00000001"]
    with pytest.raises(FileNotFoundError, match="images/test"):
        list_ade20k(tmp_path, "test")
    (tmp_path / "annotations/training/ADE_train_00000003.png").unlink()
    with pytest.raises(FileNotFoundError, match="ADE_train_00000003.png"):
        list_ade20k(tmp_path, "training")
    assert len(list_ade20k(tmp_path, "training", labels=False)) == 3
    (tmp_path / "annotations/validation/ADE_val_00000001.png").unlink()
    (tmp_path / "annotations/validation").rmdir()
    with pytest.raises(FileNotFoundError, match="annotations/validation"):
        list_ade20k(tmp_path, "validation")
