"""SplitFiles: the (layout, root, split, id) → image / mask map of each layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.data.layouts import LAYOUTS, SplitFiles, has_background, layout_classes
from wsss.io import save_label_png


def test_voc_layout_reads_the_tree_as_is(tmp_path: Path) -> None:
    files = SplitFiles("voc", tmp_path, "val", "SegmentationClass")
    assert files.image_path("2007_000032") == tmp_path / "JPEGImages/2007_000032.jpg"
    assert files.mask_path("2007_000032") == tmp_path / "SegmentationClass/2007_000032.png"
    mask = np.array([[0, 20], [255, 3]], dtype=np.uint8)
    save_label_png(files.mask_path("a"), mask, np.zeros((256, 3), np.uint8))
    assert np.array_equal(files.load_mask("a"), mask)
    (tmp_path / "ImageSets/Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets/Segmentation/val.txt").write_text("a\nb\n")
    assert files.list_ids() == ["a", "b"]
    assert files.sources() == [tmp_path / "ImageSets/Segmentation/val.txt"]
    assert files.palette()[1].tolist() == [128, 0, 0]


def test_cityscapes_layout_converts_label_ids(tmp_path: Path, cityscapes_tree) -> None:
    written = cityscapes_tree(tmp_path)
    files = SplitFiles("cityscapes", tmp_path, "train", "gtFine")
    image_id = "aachen/aachen_000001_000019"
    assert files.list_ids() == sorted(written["train"])
    assert files.image_path(image_id) == (
        tmp_path / "leftImg8bit/train/aachen/aachen_000001_000019_leftImg8bit.png"
    )
    assert files.mask_path(image_id) == (
        tmp_path / "gtFine/train/aachen/aachen_000001_000019_gtFine_labelIds.png"
    )
    raw = written["train"][image_id]
    # road 7 → 0, sidewalk 8 → 1, building 11 → 2, person 24 → 11, car 26 → 13, bicycle 33 → 18
    spec = {7: 0, 8: 1, 11: 2, 24: 11, 26: 13, 33: 18}
    expected = np.vectorize(lambda v: spec.get(int(v), 255))(raw)
    assert np.array_equal(files.load_mask(image_id), expected)
    item = files.dataset([image_id])[0]
    assert item["id"] == image_id and np.array_equal(item["mask"], expected)
    assert files.sources() == [tmp_path / "leftImg8bit/train", tmp_path / "gtFine/train"]
    assert files.palette()[0].tolist() == [128, 64, 128]
    # an absolute folder holds <id>.png masks already in training ids (pseudo masks)
    pseudo = SplitFiles("cityscapes", tmp_path, "train", tmp_path / "pseudo")
    assert pseudo.mask_path(image_id) == tmp_path / "pseudo/aachen/aachen_000001_000019.png"
    save_label_png(pseudo.mask_path(image_id), expected.astype(np.uint8), files.palette())
    assert np.array_equal(pseudo.load_mask(image_id), expected)


def test_ade20k_layout_reduces_zero_label(tmp_path: Path) -> None:
    files = SplitFiles("ade20k", tmp_path, "validation", "annotations")
    assert files.image_path("ADE_val_00000001") == (
        tmp_path / "images/validation/ADE_val_00000001.jpg"
    )
    path = files.mask_path("ADE_val_00000001")
    assert path == tmp_path / "annotations/validation/ADE_val_00000001.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.array([[0, 1], [150, 7]], np.uint8), mode="L").save(path)
    assert files.load_mask("ADE_val_00000001").tolist() == [[255, 0], [149, 6]]
    Image.fromarray(np.array([[151]], np.uint8), mode="L").save(path)
    with pytest.raises(ValueError, match=r"ADE_val_00000001\.png: .*151"):
        files.load_mask("ADE_val_00000001")


def test_layout_facts_and_errors(tmp_path: Path) -> None:
    assert LAYOUTS == ("voc", "cityscapes", "ade20k")
    assert [has_background(name) for name in LAYOUTS] == [True, False, False]
    assert layout_classes("voc") is None
    assert layout_classes("cityscapes")[6] == "traffic_light"
    assert len(layout_classes("ade20k")) == 150
    with pytest.raises(ValueError, match="unknown dataset layout 'coco'"):
        SplitFiles("coco", tmp_path, "train", "gt")
    with pytest.raises(ValueError, match="no mask folder"):
        SplitFiles("voc", tmp_path, "train").mask_path("a")
