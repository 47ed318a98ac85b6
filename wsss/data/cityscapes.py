"""Cityscapes: the 19 training classes, labelIds → trainIds, and the standard folder layout.

Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016;
spec §5.2. Layout under ``root``: ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` and
``gtFine/<split>/<city>/<name>_gtFine_labelIds.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wsss.data.pairs import ImagePair, require_dir

__all__ = [
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_COLORS",
    "LABEL_TO_TRAIN_ID",
    "cityscapes_palette",
    "image_file",
    "label_file",
    "label_ids_to_train_ids",
    "list_cityscapes",
]

IGNORE = 255
_IMAGE_SUFFIX = "_leftImg8bit.png"
CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
# trainId order, as in PCAA's cs_colors.txt
CITYSCAPES_COLORS: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)
# labelId → trainId for the 19 evaluated classes; every other labelId is ignored (255)
LABEL_TO_TRAIN_ID: dict[int, int] = {
    label_id: train_id
    for train_id, label_id in enumerate(
        (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
    )
}


def cityscapes_palette() -> np.ndarray:
    """``(256, 3)`` uint8 RGB table: trainIds 0..18 in their Cityscapes colours, others black."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[: len(CITYSCAPES_COLORS)] = CITYSCAPES_COLORS
    return palette


def label_ids_to_train_ids(label: np.ndarray) -> np.ndarray:
    """Map a Cityscapes ``labelIds`` array to trainIds: the 19 classes to 0..18 (7 → 0 road,
    26 → 13 car, …), every other id (0..6, 9, 10, 14, …, and -1 license plate) to 255.

    Args:
        label: integer array of any shape.

    Returns:
        uint8 array of the same shape.
    """
    label = np.asarray(label)
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"labelIds must be an integer array, got dtype {label.dtype}")
    table = np.full(256, IGNORE, dtype=np.uint8)
    table[list(LABEL_TO_TRAIN_ID)] = list(LABEL_TO_TRAIN_ID.values())
    out = np.full(label.shape, IGNORE, dtype=np.uint8)
    inside = (label >= 0) & (label < 256)
    out[inside] = table[label[inside]]
    return out


def image_file(root: str | os.PathLike, split: str, image_id: str) -> Path:
    """``<root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` for id ``<city>/<name>``."""
    return Path(root) / "leftImg8bit" / split / f"{image_id}{_IMAGE_SUFFIX}"


def label_file(
    root: str | os.PathLike, split: str, image_id: str, annotation: str = "gtFine"
) -> Path:
    """``<root>/<annotation>/<split>/<city>/<name>_<annotation>_labelIds.png`` for id
    ``<city>/<name>``."""
    return Path(root) / annotation / split / f"{image_id}_{annotation}_labelIds.png"


def list_cityscapes(
    root: str | os.PathLike, split: str, *, labels: bool = True, annotation: str = "gtFine"
) -> list[ImagePair]:
    """Every image of a split with its labelIds file, sorted by id.

    Args:
        root: the Cityscapes root holding ``leftImg8bit`` (and ``gtFine``).
        split: ``train``, ``val``, ``test`` (or ``train_extra`` with ``annotation="gtCoarse"``).
        labels: pair each image with its labelIds file
            ``<annotation>/<split>/<city>/<name>_<annotation>_labelIds.png``; False lists
            images only (``label`` None).
        annotation: ``gtFine`` or ``gtCoarse``.

    Returns:
        :class:`ImagePair` with id ``<city>/<name>`` (``name`` = ``<city>_<seq>_<frame>``).

    Raises:
        FileNotFoundError: naming the missing image or label folder, a split folder without
            images, or the first image whose label file is missing.
    """
    root = Path(root)
    image_dir = require_dir(root / "leftImg8bit" / split, "Cityscapes image")
    if labels:
        require_dir(root / annotation / split, "Cityscapes label")
    pairs = []
    for image in sorted(image_dir.glob(f"*/*{_IMAGE_SUFFIX}")):
        image_id = f"{image.parent.name}/{image.name[: -len(_IMAGE_SUFFIX)]}"
        label = None
        if labels:
            label = label_file(root, split, image_id, annotation)
            if not label.is_file():
                raise FileNotFoundError(f"label of Cityscapes image {image} not found: {label}")
        pairs.append(ImagePair(image_id, image, label))
    if not pairs:
        raise FileNotFoundError(f"no <city>/*{_IMAGE_SUFFIX} images in {image_dir}")
    return pairs
