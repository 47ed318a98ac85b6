"""Tests for wsss.data.synthetic: layout, determinism, labels, and the three difficulty knobs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from wsss.data.synthetic import (
    BACKGROUND_TEXTURES,
    SHAPE_FAMILIES,
    default_class_names,
    generate,
)

SMALL = {"num_train_aug": 24, "num_train": 8, "num_val": 8}


def _ids(root: Path, split: str) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()


def _aug(root: Path, image_id: str) -> np.ndarray:
    return np.asarray(Image.open(root / "SegmentationClassAug" / f"{image_id}.png"))


def _csv(root: Path) -> tuple[list[str], dict[str, list[int]]]:
    header, *rows = (root / "cls_labels.csv").read_text().splitlines()
    return header.split(","), {r.split(",")[0]: [int(v) for v in r.split(",")[1:]] for r in rows}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "voc"
    generate(root, seed=3, **SMALL)
    return root


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """One object per image, no noise or clutter, full context bias."""
    root = tmp_path_factory.mktemp("single") / "voc"
    generate(
        root,
        seed=5,
        num_train_aug=30,
        num_train=0,
        num_val=0,
        max_objects=1,
        noise_std=0,
        clutter=0,
        context_bias=1.0,
    )
    return root


def test_names_and_defaults() -> None:
    assert len(SHAPE_FAMILIES) >= 6 and len(set(SHAPE_FAMILIES)) == len(SHAPE_FAMILIES)
    assert default_class_names(3) == list(SHAPE_FAMILIES[:3])
    with pytest.raises(ValueError):
        default_class_names(len(SHAPE_FAMILIES) + 1)


def test_layout_complete(tree: Path) -> None:
    aug, train, val = _ids(tree, "train_aug"), _ids(tree, "train"), _ids(tree, "val")
    assert (len(aug), len(train), len(val)) == (24, 8, 8)
    assert train == aug[:8] and not set(aug) & set(val) and len(set(aug + val)) == 32
    assert all(i.startswith("synth_") and len(i) == 12 for i in aug + val)
    sizes = set()
    for i in aug + val:
        with Image.open(tree / "JPEGImages" / f"{i}.jpg") as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            w, h = img.size
        sizes.add((h, w))
        assert 80 <= h <= 112 and 80 <= w <= 112
        with Image.open(tree / "SegmentationClassAug" / f"{i}.png") as lbl:
            assert lbl.mode == "L" and lbl.size == (w, h)
        gt = tree / "SegmentationClass" / f"{i}.png"
        assert gt.is_file() == (i in train or i in val)
        if gt.is_file():
            with Image.open(gt) as lbl:
                assert lbl.mode == "P" and lbl.size == (w, h)
                assert lbl.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
    assert len(sizes) > 10  # sizes vary, like VOC
    header, rows = _csv(tree)
    assert header == ["image_id", *SHAPE_FAMILIES] and set(rows) == set(aug + val)
    meta = json.loads((tree / "synthetic.json").read_text())
    assert meta["params"]["seed"] == 3 and meta["params"]["num_train_aug"] == 24
    assert set(meta["images"]) == set(aug + val)


def test_masks_match_csv_and_every_class_appears(tree: Path) -> None:
    _, rows = _csv(tree)
    k = len(SHAPE_FAMILIES)
    for image_id, row in rows.items():
        values = set(np.unique(_aug(tree, image_id)).tolist())
        assert values <= set(range(k + 1)), image_id
        assert row == [int(c in values) for c in range(1, k + 1)], image_id
        assert sum(row) >= 1
    assert np.array(list(rows.values())).sum(0).min() >= 1


def test_border_band(tree: Path) -> None:
    """SegmentationClass = Aug with 255 exactly on pixels within 1 px (8-neighbourhood) of a
    different label; Aug itself has no 255."""
    ids = _ids(tree, "train") + _ids(tree, "val")
    for image_id in ids:
        aug = _aug(tree, image_id).astype(int)
        gt = np.asarray(Image.open(tree / "SegmentationClass" / f"{image_id}.png")).astype(int)
        assert 255 not in aug and 255 in gt
        h, w = aug.shape
        padded = np.pad(aug, 1, constant_values=-1)
        near = np.zeros((h, w), bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                nb = padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
                near |= (nb != -1) & (nb != aug)
        assert np.array_equal(gt == 255, near), image_id
        assert np.array_equal(gt[~near], aug[~near])


def test_deterministic_and_seed_sensitive(tree: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", seed=3, **SMALL)
    assert _files(tmp_path / "again") == _files(tree)
    generate(tmp_path / "other", seed=4, **SMALL)
    first, other = _files(tree), _files(tmp_path / "other")
    jpgs = [k for k in first if k.endswith(".jpg")]
    assert sum(first[k] != other[k] for k in jpgs) == len(jpgs)


def test_images_independent_of_count(tree: Path, tmp_path: Path) -> None:
    generate(tmp_path / "few", seed=3, num_train_aug=5, num_train=2, num_val=3)
    few, full = _files(tmp_path / "few"), _files(tree)
    for i in range(5):
        name = f"JPEGImages/synth_{i:06d}.jpg"
        assert few[name] == full[name]
    assert few["JPEGImages/synth_000005.jpg"] == full["JPEGImages/synth_000024.jpg"]  # 1st val


def test_object_scales_span_range(single: Path) -> None:
    """Longest extent (from the mask's convex hull) / shorter side lies in the scale range,
    matches the recorded scale, and both tiny and large objects occur."""
    meta = json.loads((single / "synthetic.json").read_text())
    extents = []
    for image_id in _ids(single, "train_aug"):
        obj = _aug(single, image_id) > 0
        hull = cv2.convexHull(np.argwhere(obj)[:, ::-1].astype(np.int32)).reshape(-1, 2)
        feret = np.sqrt(((hull[:, None] - hull[None]) ** 2).sum(-1)).max()
        short = min(obj.shape)
        scale = meta["images"][image_id]["objects"][0]["scale"]
        assert 0.8 * scale - 3 / short <= feret / short <= scale + 1 / short, image_id
        extents.append(feret / short)
    assert min(extents) < 0.22 and max(extents) > 0.6
    assert 0.15 * 0.8 - 0.04 <= min(extents) and max(extents) <= 0.76


def test_context_bias(single: Path, tmp_path: Path) -> None:
    def preferred_share(root: Path) -> float:
        meta = json.loads((root / "synthetic.json").read_text())
        header, rows = _csv(root)
        hits = []
        for image_id, row in rows.items():
            n = len(BACKGROUND_TEXTURES)
            wanted = {BACKGROUND_TEXTURES[c % n] for c, v in enumerate(row) if v}
            hits.append(meta["images"][image_id]["background"] in wanted)
        return float(np.mean(hits))

    assert set(BACKGROUND_TEXTURES) >= {"grass", "waves", "bricks", "sand", "wood"}
    assert preferred_share(single) == 1.0
    generate(
        tmp_path / "none",
        seed=5,
        num_train_aug=30,
        num_train=0,
        num_val=0,
        max_objects=1,
        context_bias=0.0,
    )
    assert preferred_share(tmp_path / "none") < 0.5  # chance level is 1/6


@pytest.mark.parametrize("fraction", [0.15, 0.4])
def test_part_fraction(fraction: float, tmp_path: Path) -> None:
    """The saturated part covers ~``part_fraction`` of each object; bodies are desaturated."""
    generate(
        tmp_path / "p",
        seed=7,
        num_train_aug=8,
        num_train=0,
        num_val=0,
        max_objects=1,
        noise_std=0,
        scale_range=(0.5, 0.75),
        part_fraction=fraction,
    )
    measured = []
    for image_id in _ids(tmp_path / "p", "train_aug"):
        rgb = np.asarray(Image.open(tmp_path / "p" / "JPEGImages" / f"{image_id}.jpg"), float)
        obj = (_aug(tmp_path / "p", image_id) > 0).astype(np.uint8)
        inner = cv2.erode(obj, np.ones((3, 3), np.uint8)).astype(bool)
        saturation = (rgb.max(2) - rgb.min(2)) / np.maximum(rgb.max(2), 1)
        measured.append((saturation[inner] > 0.4).mean())
    assert np.abs(np.array(measured) - fraction).max() < 0.09, measured
    assert abs(np.mean(measured) - fraction) < 0.03, measured


def test_refusals(tmp_path: Path) -> None:
    assert len(SHAPE_FAMILIES) == 6
    with pytest.raises(ValueError, match="7 fg_class_names"):
        generate(tmp_path / "x", seed=0, fg_class_names=[f"c{i}" for i in range(7)])
    with pytest.raises(ValueError, match="context_bias"):
        generate(tmp_path / "x", seed=0, context_bias=1.5)
    assert not (tmp_path / "x").exists()
    root = tmp_path / "exists"
    generate(root, seed=0, num_train_aug=2, num_train=1, num_val=1)
    with pytest.raises(FileExistsError, match="exists"):
        generate(root, seed=0, num_train_aug=2, num_train=1, num_val=1)
    generate(
        root,
        seed=0,
        num_train_aug=3,
        num_train=1,
        num_val=0,
        fg_class_names=["a", "b"],
        overwrite=True,
    )
    assert _ids(root, "train_aug") == ["synth_000000", "synth_000001", "synth_000002"]
    assert _csv(root)[0] == ["image_id", "a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]  # no temporary leftovers
