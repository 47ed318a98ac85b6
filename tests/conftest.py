"""Fixtures and constants shared by test folders: tiny dataset trees in the Cityscapes and COCO
layouts, the dense-CRF settings of the spec, and the mark for tests that need pydensecrf."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

needs_crf = pytest.mark.skipif(
    importlib.util.find_spec("pydensecrf") is None, reason="pydensecrf not installed"
)

# algorithms.md §1.5: CRF-label-IRN, its kernels (also the stage tests' CRF kernels), and
# CRF-softmax-PSA
IRN_CRF_KERNELS = {
    "gaussian": {"sxy": 3, "compat": 3},
    "bilateral": {"sxy": 50, "srgb": 5, "compat": 10},
}
CRF_LABEL_IRN = {"unary": "labels", "gt_prob": 0.7, **IRN_CRF_KERNELS, "iterations": 10}
CRF_SOFTMAX_PSA = {
    "unary": "softmax",
    "gaussian": {"sxy": 3, "compat": 3},
    "bilateral": {"sxy": 80, "srgb": 13, "compat": 10},
    "iterations": 10,
}

# labelIds the tiny trees use: road 7, sidewalk 8, building 11, person 24, car 26, bicycle 33,
# and 0 / 4 (unlabeled, static: ignored after conversion)
TINY_LABEL_IDS = np.array([7, 8, 11, 24, 26, 33, 0, 4], dtype=np.uint8)
TINY_CITIES = {
    "train": ["aachen_000000_000019", "aachen_000001_000019", "bonn_000000_000019"],
    "val": ["lindau_000000_000019", "lindau_000001_000019"],
}


def _write_cityscapes_tree(root: Path, *, size: tuple[int, int] = (40, 56), seed: int = 0):
    """``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` RGB images and
    ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` grey labelIds in 8×8 blocks, each
    image coloured by its labels plus noise. Returns ``{split: {id: labelIds}}``."""
    rng = np.random.default_rng(seed)
    h, w = size
    written: dict[str, dict[str, np.ndarray]] = {}
    for split, names in TINY_CITIES.items():
        written[split] = {}
        for name in names:
            city = name.split("_")[0]
            blocks = rng.choice(TINY_LABEL_IDS, size=(-(-h // 8), -(-w // 8)))
            label = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))[:h, :w]
            colour = (label.astype(np.int64) * 37) % 256
            rgb = np.stack([colour, (colour * 3) % 256, 255 - colour], axis=-1)
            rgb = np.clip(rgb + rng.integers(-10, 11, size=rgb.shape), 0, 255).astype(np.uint8)
            image_file = root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png"
            label_file = root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png"
            for path in (image_file, label_file):
                path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).save(image_file)
            Image.fromarray(label, mode="L").save(label_file)
            written[split][f"{city}/{name}"] = label
    return written


@pytest.fixture
def cityscapes_tree() -> Callable[..., dict[str, dict[str, np.ndarray]]]:
    """``cityscapes_tree(root, size=(h, w), seed=0)`` writes a tiny Cityscapes-layout tree
    (3 train images in 2 cities, 2 val images) and returns its labelIds by split and id."""
    return _write_cityscapes_tree


def _rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE of a bool mask: runs over column-major pixels, 0-runs first."""
    flat = mask.T.reshape(-1).astype(np.uint8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return runs if flat[0] == 0 else [0, *runs]


def _write_coco_tree(root: Path, categories: list[dict] | None = None) -> dict:
    """A COCO-2014 folder: ``train2014/`` with 3 images (one without annotations),
    ``val2014/`` with 2, and ``annotations/instances_{train,val}2014.json`` with polygons
    (a large person with a small car on top), a crowd RLE and categories ``categories``
    (default: person 1, car 3, toothbrush 90; the car and person ids must be among them).
    Returns ``{"categories", "images": {file stem: (h, w)}}``."""
    categories = categories or [
        {"id": 90, "name": "toothbrush", "supercategory": "indoor"},
        {"id": 1, "name": "person", "supercategory": "person"},
        {"id": 3, "name": "car", "supercategory": "vehicle"},
    ]
    rng = np.random.default_rng(0)
    h, w = 24, 32
    crowd = np.zeros((h, w), dtype=bool)
    crowd[12:20, 2:10] = True  # overlaps the person on rows 12–14
    sizes = {}
    for folder, n_images in (("train2014", 3), ("val2014", 2)):
        (root / folder).mkdir(parents=True)
        images, annotations = [], []
        for i in range(n_images):
            name = f"COCO_{folder}_{i + 1:012d}.jpg"
            pixels = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / name, quality=95)
            images.append({"id": 100 + i, "file_name": name, "height": h, "width": w})
            sizes[Path(name).stem] = (h, w)
            if folder == "train2014" and i == 2:
                continue  # an image without annotations: left out of the WSSS split
            person = [2, 2, 20, 2, 20, 14, 2, 14]  # 19 × 13 px incl. the outline
            car = [8, 5, 12, 5, 12, 9, 8, 9]  # inside the person, 5 × 5 px
            annotations += [
                {
                    "id": 10 * i + 1,
                    "image_id": 100 + i,
                    "category_id": 1,
                    "iscrowd": 0,
                    "area": 216.0,
                    "segmentation": [person],
                },
                {
                    "id": 10 * i + 2,
                    "image_id": 100 + i,
                    "category_id": 3,
                    "iscrowd": 0,
                    "area": 16.0,
                    "segmentation": [car],
                },
                {
                    "id": 10 * i + 3,
                    "image_id": 100 + i,
                    "category_id": 3,
                    "iscrowd": 1,
                    "area": 48.0,
                    "segmentation": {"counts": _rle_counts(crowd), "size": [h, w]},
                },
            ]
        (root / "annotations").mkdir(exist_ok=True)
        data = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{folder}.json").write_text(json.dumps(data))
    return {"categories": categories, "images": sizes}


@pytest.fixture
def coco_tree() -> Callable[..., dict]:
    """``coco_tree(root, categories=None)`` writes a tiny COCO-2014 folder (see
    :func:`_write_coco_tree`)."""
    return _write_coco_tree
