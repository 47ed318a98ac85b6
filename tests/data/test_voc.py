"""Tests for wsss.data.voc: palette, layout, label I/O, validation and the dataset."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import default_collate

from wsss.data.dataset import VOCSegmentation
from wsss.data.voc import (
    IGNORE_INDEX,
    VOC_CLASSES,
    image_labels,
    image_path,
    labels_from_mask,
    mask_path,
    read_image_labels,
    split_path,
    validate_split,
    voc_palette,
    write_image_labels,
)
from wsss.io import save_label_png

NAMES = ["a", "b", "c"]
AUG = "SegmentationClassAug"


def test_class_list_and_ignore() -> None:
    assert len(VOC_CLASSES) == 21
    assert VOC_CLASSES[0] == "background" and VOC_CLASSES[15] == "person"
    assert VOC_CLASSES[20] == "tvmonitor"
    assert IGNORE_INDEX == 255


def test_palette_matches_table() -> None:
    table = {  # algorithms.md §5.1
        0: (0, 0, 0),
        1: (128, 0, 0),
        2: (0, 128, 0),
        3: (128, 128, 0),
        4: (0, 0, 128),
        5: (128, 0, 128),
        6: (0, 128, 128),
        7: (128, 128, 128),
        8: (64, 0, 0),
        9: (192, 0, 0),
        10: (64, 128, 0),
        11: (192, 128, 0),
        12: (64, 0, 128),
        13: (192, 0, 128),
        14: (64, 128, 128),
        15: (192, 128, 128),
        16: (0, 64, 0),
        17: (128, 64, 0),
        18: (0, 192, 0),
        19: (128, 192, 0),
        20: (0, 64, 128),
        255: (224, 224, 192),
    }
    palette = voc_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    for index, rgb in table.items():
        assert tuple(palette[index]) == rgb, index
    assert len({tuple(c) for c in palette}) == 256  # all colours distinct


def test_layout_helpers(tmp_path) -> None:
    assert image_path(tmp_path, "x_1") == tmp_path / "JPEGImages" / "x_1.jpg"
    assert mask_path(tmp_path, "x_1", "SegmentationClassAug") == (
        tmp_path / "SegmentationClassAug" / "x_1.png"
    )
    assert split_path(tmp_path, "val") == tmp_path / "ImageSets" / "Segmentation" / "val.txt"


def _write_sample(root, image_id, h=6, w=8, mask=None, mask_dir="SegmentationClassAug"):
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2] = (200, 40, 40)
    image_path(root, image_id).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(image_path(root, image_id), quality=100)
    if mask is not None:
        mask_path(root, image_id, mask_dir).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(mask_path(root, image_id, mask_dir))
    return rgb


def test_dataset_round_trip_palette_and_gray(tmp_path) -> None:
    label = np.array([[0, 1, 2, 255], [20, 0, 3, 1], [255, 255, 0, 0]], dtype=np.uint8)
    rgb = _write_sample(tmp_path, "p", h=3, w=4)
    save_label_png(mask_path(tmp_path, "p", "SegmentationClass"), label, voc_palette())
    _write_sample(tmp_path, "g", h=3, w=4, mask=label)  # grayscale "L" PNG (SBD style)
    assert Image.open(mask_path(tmp_path, "p", "SegmentationClass")).mode == "P"
    assert Image.open(mask_path(tmp_path, "g", "SegmentationClassAug")).mode == "L"

    for image_id, mask_dir in (("p", "SegmentationClass"), ("g", "SegmentationClassAug")):
        item = VOCSegmentation(tmp_path, [image_id], mask_dir=mask_dir)[0]
        assert set(item) == {"id", "image", "mask"}
        assert item["id"] == image_id
        assert item["mask"].dtype == np.uint8 and np.array_equal(item["mask"], label)
        assert item["image"].shape == (3, 4, 3) and item["image"].dtype == np.uint8
        assert np.abs(item["image"].astype(int) - rgb).max() <= 12  # JPEG, quality 100


def test_dataset_refuses_rgb_mask(tmp_path) -> None:
    _write_sample(tmp_path, "r", h=3, w=4)
    mask_path(tmp_path, "r", "M").parent.mkdir()
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(mask_path(tmp_path, "r", "M"))
    with pytest.raises(ValueError, match="r.png"):
        VOCSegmentation(tmp_path, ["r"], mask_dir="M")[0]


def test_dataset_optional_keys_and_collate(tmp_path) -> None:
    for i in ("a", "b"):
        _write_sample(tmp_path, i)
    labels = {"a": np.array([1, 0, 1], np.float32), "b": np.array([0, 1, 0], np.float32)}
    ds = VOCSegmentation(tmp_path, ["a", "b"], mask_dir=None, image_labels=labels)
    assert len(ds) == 2
    batch = default_collate([ds[0], ds[1]])
    assert set(batch) == {"id", "image", "labels"}
    assert batch["id"] == ["a", "b"]
    assert batch["labels"].tolist() == [[1, 0, 1], [0, 1, 0]]
    assert tuple(batch["image"].shape) == (2, 6, 8, 3)
    assert set(VOCSegmentation(tmp_path, ["a"], mask_dir=None)[0]) == {"id", "image"}
    with pytest.raises(KeyError, match="'c'"):
        VOCSegmentation(tmp_path, ["a", "c"], mask_dir=None, image_labels=labels)


def test_labels_csv_round_trip(tmp_path) -> None:
    labels = {"x": np.array([1, 0, 1]), "y": np.array([0.0, 0.0, 0.0]), "z": np.array([0, 1, 0])}
    path = tmp_path / "cls.csv"
    write_image_labels(path, labels, NAMES)
    assert path.read_text().splitlines() == ["image_id,a,b,c", "x,1,0,1", "y,0,0,0", "z,0,1,0"]
    back = read_image_labels(path, NAMES)
    assert list(back) == ["x", "y", "z"]
    for key, value in labels.items():
        assert back[key].dtype == np.float32 and back[key].tolist() == value.tolist()


def test_labels_csv_refuses_bad_header_and_cells(tmp_path) -> None:
    path = tmp_path / "cls.csv"
    write_image_labels(path, {"x": np.array([1, 0, 1])}, NAMES)
    with pytest.raises(ValueError, match=r"cls\.csv.*\['image_id', 'a', 'c', 'b'\]"):
        read_image_labels(path, ["a", "c", "b"])
    with pytest.raises(ValueError, match="cls.csv"):
        read_image_labels(path, ["a", "b"])
    path.write_text("image_id,a,b,c\nx,1,2,0\n")
    with pytest.raises(ValueError, match="line 2"):
        read_image_labels(path, NAMES)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_image_labels(tmp_path / "nope.csv", NAMES)


def test_labels_from_mask_hand_made() -> None:
    mask = np.zeros((4, 5), np.uint8)
    mask[0, 0] = 3
    mask[2, 1:3] = 1
    mask[3, :] = 255
    assert labels_from_mask(mask, 4).tolist() == [1.0, 0.0, 1.0, 0.0]
    assert labels_from_mask(np.full((2, 2), 255, np.uint8), 2).tolist() == [0.0, 0.0]
    assert labels_from_mask(mask, 4).dtype == np.float32
    mask[1, 1] = 5
    with pytest.raises(ValueError, match=r"\[5\]"):
        labels_from_mask(mask, 4)


def test_image_labels_from_masks_and_file(tmp_path) -> None:
    m1 = np.array([[0, 2], [2, 255]], np.uint8)
    m2 = np.array([[1, 3], [0, 0]], np.uint8)
    _write_sample(tmp_path, "i1", 2, 2, mask=m1)
    _write_sample(tmp_path, "i2", 2, 2, mask=m2)
    derived = image_labels(tmp_path, ["i1", "i2"], fg_class_names=NAMES)
    assert derived["i1"].tolist() == [0, 1, 0] and derived["i2"].tolist() == [1, 0, 1]
    path = tmp_path / "cls.csv"
    write_image_labels(path, {"i1": np.array([1, 1, 1])}, NAMES)
    from_file = image_labels(tmp_path, ["i1"], fg_class_names=NAMES, labels_file=path)
    assert from_file["i1"].tolist() == [1, 1, 1]
    with pytest.raises(KeyError, match=r"'i2'.*cls\.csv"):
        image_labels(tmp_path, ["i1", "i2"], fg_class_names=NAMES, labels_file=path)


def _good_tree(root):
    mask = np.zeros((6, 8), np.uint8)
    mask[1:4, 2:5] = 2
    mask[0, :] = 255
    for i in ("g1", "g2"):
        _write_sample(root, i, mask=mask)


def test_validate_split_good_tree_passes(tmp_path) -> None:
    _good_tree(tmp_path)
    for check in (True, False):
        validate_split(
            tmp_path,
            ["g1", "g2"],
            mask_dir="SegmentationClassAug",
            num_classes=3,
            check_pixels=check,
        )
    validate_split(tmp_path, ["g1"], mask_dir=None, num_classes=3)


def test_validate_split_missing_image_and_mask(tmp_path) -> None:
    _good_tree(tmp_path)
    kwargs = {"mask_dir": "SegmentationClassAug", "num_classes": 3}
    with pytest.raises(FileNotFoundError, match="JPEGImages/absent.jpg"):
        validate_split(tmp_path, ["g1", "absent"], **kwargs)
    _write_sample(tmp_path, "nomask")
    with pytest.raises(FileNotFoundError, match="SegmentationClassAug/nomask.png"):
        validate_split(tmp_path, ["nomask"], **kwargs)
    validate_split(tmp_path, ["nomask"], mask_dir=None, num_classes=3)


def test_validate_split_unreadable_and_truncated_image(tmp_path) -> None:
    _good_tree(tmp_path)
    kwargs = {"mask_dir": "SegmentationClassAug", "num_classes": 3}
    image_path(tmp_path, "g1").write_bytes(b"not an image at all")
    for check in (True, False):
        with pytest.raises(ValueError, match="unreadable image .*g1.jpg"):
            validate_split(tmp_path, ["g1"], check_pixels=check, **kwargs)
    big = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(big).save(image_path(tmp_path, "g2"), quality=90)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(mask_path(tmp_path, "g2", AUG))
    validate_split(tmp_path, ["g2"], **kwargs)
    data = image_path(tmp_path, "g2").read_bytes()
    image_path(tmp_path, "g2").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="unreadable image .*g2.jpg"):
        validate_split(tmp_path, ["g2"], **kwargs)
    validate_split(tmp_path, ["g2"], check_pixels=False, **kwargs)  # header-only: documented gap


def test_validate_split_size_mismatch(tmp_path) -> None:
    _good_tree(tmp_path)
    Image.fromarray(np.zeros((6, 7), np.uint8)).save(mask_path(tmp_path, "g2", AUG))
    for check in (True, False):
        with pytest.raises(ValueError, match=r"g2\.png is 7x6 .* is 8x6"):
            validate_split(
                tmp_path,
                ["g1", "g2"],
                mask_dir="SegmentationClassAug",
                num_classes=3,
                check_pixels=check,
            )


def test_validate_split_label_out_of_range(tmp_path) -> None:
    _good_tree(tmp_path)
    bad = np.zeros((6, 8), np.uint8)
    bad[2, 2], bad[3, 3] = 3, 255
    Image.fromarray(bad).save(mask_path(tmp_path, "g2", "SegmentationClassAug"))
    with pytest.raises(ValueError, match=r"g2\.png has label value\(s\) \[3\]"):
        validate_split(tmp_path, ["g1", "g2"], mask_dir="SegmentationClassAug", num_classes=3)
    validate_split(tmp_path, ["g2"], mask_dir="SegmentationClassAug", num_classes=4)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(mask_path(tmp_path, "g1", AUG))
    with pytest.raises(ValueError, match="g1.png has mode 'RGB'"):
        validate_split(tmp_path, ["g1"], mask_dir="SegmentationClassAug", num_classes=3)
