"""ADE20K (SceneParsing ``ADEChallengeData2016``): 150 classes, label reduction, folder layout.

Zhou et al., "Scene Parsing through ADE20K Dataset", CVPR 2017; spec §5.3. Layout under
``root``: ``images/<split>/<name>.jpg`` and ``annotations/<split>/<name>.png`` with split
``training`` or ``validation``; annotation 0 = "other", 1..150 = the classes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wsss.data.pairs import ImagePair, require_dir

__all__ = ["ADE20K_CLASSES", "ade20k_to_train_ids", "image_file", "label_file", "list_ade20k"]

IGNORE = 255
# training id k = annotation value k + 1
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip


def ade20k_to_train_ids(label: np.ndarray) -> np.ndarray:
    """Reduce an ADE20K annotation to training ids: 0 ("other") → 255, k → k − 1 (1..150).

    Args:
        label: integer array of any shape with values 0..150.

    Returns:
        uint8 array of the same shape, values 0..149 or 255.

    Raises:
        ValueError: for a non-integer array or a value outside 0..150 (not an annotation of
            the 150-class benchmark).
    """
    label = np.asarray(label)
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"ADE20K annotations must be integer arrays, got dtype {label.dtype}")
    bad = (label < 0) | (label > len(ADE20K_CLASSES))
    if bad.any():
        raise ValueError(
            f"ADE20K annotation value(s) {np.unique(label[bad]).tolist()} outside 0..150"
        )
    return np.where(label == 0, IGNORE, label.astype(np.int64) - 1).astype(np.uint8)


def image_file(root: str | os.PathLike, split: str, image_id: str) -> Path:
    """``<root>/images/<split>/<id>.jpg``."""
    return Path(root) / "images" / split / f"{image_id}.jpg"


def label_file(
    root: str | os.PathLike, split: str, image_id: str, annotation: str = "annotations"
) -> Path:
    """``<root>/<annotation>/<split>/<id>.png``."""
    return Path(root) / annotation / split / f"{image_id}.png"


def list_ade20k(
    root: str | os.PathLike, split: str, *, labels: bool = True, annotation: str = "annotations"
) -> list[ImagePair]:
    """Every ``.jpg`` image of a split with its annotation PNG, sorted by id.

    Args:
        root: the ``ADEChallengeData2016`` folder.
        split: ``training`` or ``validation``.
        labels: pair each image with ``<annotation>/<split>/<name>.png``; False lists images
            only (``label`` None).
        annotation: the annotation folder (``annotations``).

    Returns:
        :class:`ImagePair` with id ``<name>`` (e.g. ``ADE_val_00000001``).

    Raises:
        FileNotFoundError: naming the missing image or annotation folder, a split folder
            without images, or the first image whose annotation is missing.
    """
    root = Path(root)
    image_dir = require_dir(root / "images" / split, "ADE20K image")
    if labels:
        require_dir(root / annotation / split, "ADE20K annotation")
    pairs = []
    for image in sorted(image_dir.glob("*.jpg")):
        label = None
        if labels:
            label = label_file(root, split, image.stem, annotation)
            if not label.is_file():
                raise FileNotFoundError(f"annotation of ADE20K image {image} not found: {label}")
        pairs.append(ImagePair(image.stem, image, label))
    if not pairs:
        raise FileNotFoundError(f"no .jpg images in {image_dir}")
    return pairs
