"""COCO-2014 → VOC-format WSSS tree: RLE and polygon decoding, class masks, the conversion."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from wsss.data.coco import (
    COCO_CATEGORIES,
    COCO_CLASSES,
    annotation_mask,
    category_map,
    class_mask,
    decode_rle,
    image_labels,
    rle_counts_from_string,
)
from wsss.data.voc import read_image_labels
from wsss.io import load_label_png, read_ids
from wsss.stages.coco import run_convert_coco
from wsss.stages.common import DatasetIndex
from wsss.stages.dataset import run_check_dataset

CLASSES = ["background", "person", "car", "toothbrush"]


def _rle_to_string(counts: list[int]) -> str:
    """pycocotools' rleToString, written out independently of the decoder under test."""
    out = []
    for i, value in enumerate(counts):
        if i > 2:
            value -= counts[i - 2]
        more = True
        while more:
            char = value & 0x1F
            value >>= 5
            more = value != -1 if char & 0x10 else value != 0
            out.append(chr(char + (0x20 if more else 0) + 48))
    return "".join(out)


def _column_major_runs(mask: np.ndarray) -> list[int]:
    runs, current, length = [], False, 0
    for value in mask.T.reshape(-1):
        if bool(value) != current:
            runs.append(length)
            current, length = bool(value), 0
        length += 1
    return runs + [length]


def test_category_table() -> None:
    assert len(COCO_CATEGORIES) == 80 and len(COCO_CLASSES) == 81
    assert COCO_CATEGORIES[0] == (1, "person") and COCO_CATEGORIES[-1] == (90, "toothbrush")
    assert "traffic_light" in COCO_CLASSES and "dining_table" in COCO_CLASSES


def test_category_ids_become_contiguous_in_id_order() -> None:
    mapping, names = category_map(
        [{"id": 90, "name": "teddy bear"}, {"id": 1, "name": "person"}, {"id": 3, "name": "car"}]
    )
    assert mapping == {1: 1, 3: 2, 90: 3}
    assert names == ["person", "car", "teddy_bear"]
    with pytest.raises(ValueError, match="repeat"):
        category_map([{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])


def test_rle_decoding_uncompressed_and_compressed() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((7, 9)) > 0.6
    counts = _column_major_runs(mask)
    assert (decode_rle(counts, [7, 9]) == mask).all()
    assert rle_counts_from_string(_rle_to_string(counts)) == counts
    assert (decode_rle(_rle_to_string(counts), [7, 9]) == mask).all()
    with pytest.raises(ValueError, match="sum to"):
        decode_rle([3, 4], [7, 9])


def test_polygon_and_rle_annotations() -> None:
    square = annotation_mask([[1, 1, 4, 1, 4, 4, 1, 4]], 6, 6)
    expected = np.zeros((6, 6), dtype=bool)
    expected[1:5, 1:5] = True
    assert (square == expected).all()
    two_parts = annotation_mask([[0, 0, 1, 0, 1, 1, 0, 1], [4, 4, 5, 4, 5, 5, 4, 5]], 6, 6)
    assert two_parts.sum() == 8
    with pytest.raises(ValueError, match="differs"):
        annotation_mask({"counts": [36], "size": [5, 6]}, 6, 6)


def test_class_mask_overlap_and_crowd() -> None:
    big = {"id": 1, "category_id": 1, "area": 50.0, "segmentation": [[0, 0, 7, 0, 7, 7, 0, 7]]}
    small = {"id": 2, "category_id": 3, "area": 4.0, "segmentation": [[2, 2, 3, 2, 3, 3, 2, 3]]}
    crowd_mask = np.zeros((10, 10), dtype=bool)
    crowd_mask[6:10, 6:10] = True
    crowd = {
        "id": 3,
        "category_id": 3,
        "iscrowd": 1,
        "area": 16.0,
        "segmentation": {"counts": _column_major_runs(crowd_mask), "size": [10, 10]},
    }
    categories = {1: 1, 3: 2}
    # the small car stays on top of the large person whatever the annotation order
    for anns in ([big, small, crowd], [small, crowd, big]):
        label = class_mask(anns, 10, 10, categories)
        assert (label[2:4, 2:4] == 2).all()
        assert label[0, 0] == 1 and label[7, 7] == 1  # person covers part of the crowd region
        assert (label[8:, 8:] == 255).all() and label[9, 0] == 0
    labelled = class_mask([big, small, crowd], 10, 10, categories, crowd="label")
    assert (labelled[8:, 8:] == 2).all()
    assert image_labels([big, crowd], categories, 2).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="unknown category_id 5"):
        class_mask([{**big, "category_id": 5}], 10, 10, categories)
    with pytest.raises(ValueError, match="crowd"):
        class_mask([big], 10, 10, categories, crowd="drop")


@pytest.mark.parametrize("images", ["symlink", "copy"])
def test_convert_coco_writes_a_checkable_voc_tree(tmp_path: Path, coco_tree, images: str) -> None:
    source = tmp_path / "coco"
    tree = coco_tree(source)
    out = tmp_path / "converted"
    counts = run_convert_coco(source, out, dataset="coco", classes=CLASSES, images=images)
    assert counts == {"train": 2, "val": 2}  # the train image without annotations is left out
    train = read_ids(out / "ImageSets/Segmentation/train.txt")
    assert train == ["COCO_train2014_000000000001", "COCO_train2014_000000000002"]
    assert len(list((out / "JPEGImages").iterdir())) == 4
    assert (out / "JPEGImages" / f"{train[0]}.jpg").is_symlink() == (images == "symlink")
    label = load_label_png(out / "SegmentationClass" / f"{train[0]}.png")
    assert label.shape == tree["images"][train[0]]
    assert label[3, 3] == 1 and label[7, 10] == 2  # person (id 1 → 1), car (id 3 → 2) on top
    assert label[13, 5] == 1 and label[17, 5] == 255 and label[22, 30] == 0  # crowd → 255
    labels = read_image_labels(out / "cls_labels.csv", CLASSES[1:])
    assert labels[train[0]].tolist() == [1.0, 1.0, 0.0]
    meta = json.loads((out / "coco.json").read_text())
    assert meta["category_to_train_id"] == {"1": 1, "3": 2, "90": 3}
    assert meta["without_annotations"] == {"train": 1, "val": 0}

    index = tmp_path / "index.json"
    run_check_dataset(
        out,
        index,
        dataset="coco",
        classes=CLASSES,
        splits={"train": "SegmentationClass", "val": "SegmentationClass"},
        labels_file="cls_labels.csv",
        check_pixels=True,
    )
    assert DatasetIndex(index).ids("val") == read_ids(out / "ImageSets/Segmentation/val.txt")


def test_convert_coco_errors_name_the_key(tmp_path: Path, coco_tree) -> None:
    with pytest.raises(FileNotFoundError, match=r"datasets\.coco\.coco\.source is not set"):
        run_convert_coco(None, tmp_path / "out", dataset="coco", classes=CLASSES)
    source = tmp_path / "coco"
    coco_tree(source)
    (source / "annotations" / "instances_val2014.json").unlink()
    with pytest.raises(FileNotFoundError, match="lacks files"):
        run_convert_coco(source, tmp_path / "out", dataset="coco", classes=CLASSES)
    source2 = tmp_path / "coco2"
    coco_tree(source2)
    with pytest.raises(ValueError, match=r"datasets\.coco\.classes must be"):
        run_convert_coco(source2, tmp_path / "out", dataset="coco", classes=CLASSES[:3])
    assert not (tmp_path / "out").exists()


def test_config_entry_names_the_coco_classes() -> None:
    repo = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((repo / "config.yaml").read_text())
    assert config["datasets"]["coco"]["classes"] == list(COCO_CLASSES)
    schema = yaml.safe_load((repo / "workflow/schemas/config.schema.yaml").read_text())
    config["datasets"]["coco"]["synthetic"] = config["datasets"]["synth"]["synthetic"]
    with pytest.raises(jsonschema.ValidationError, match="synthetic"):
        jsonschema.validate(config, schema)
