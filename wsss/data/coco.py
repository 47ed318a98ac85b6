"""MS-COCO 2014 for WSSS: instance annotations → class masks and image-level labels.

The WSSS setting of COCO (IRN/ReCAM/AMN lineage) uses the 80 object categories plus
background (81 classes), the category ids (1..90 with gaps) renumbered 1..80 in ascending id
order, ``train2014`` for training and ``val2014`` for evaluation, and only images with at least
one annotation (82,081 train / 40,137 val images, the counts those papers report).

Masks are painted here as follows (decisions recorded in every converted tree's
``coco.json``):

* overlaps: instances are painted from the largest to the smallest (ties: annotation id), so
  a small object lying on a large one keeps its pixels;
* crowd regions (``iscrowd = 1``, one region covering many instances): ``255`` (ignored by
  every evaluation) where no single instance covers them, or their class with
  ``crowd="label"``; crowd categories count as present in the image-level labels;
* polygons are filled with PIL (pixels whose centre or edge the outline touches); pycocotools'
  rasteriser can differ by a pixel along edges. RLE (uncompressed count lists and compressed
  strings) is decoded exactly as pycocotools' ``maskApi.c`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "COCO_CATEGORIES",
    "COCO_CLASSES",
    "IGNORE_INDEX",
    "annotation_mask",
    "category_map",
    "class_mask",
    "decode_rle",
    "image_labels",
    "rle_counts_from_string",
]

IGNORE_INDEX = 255

# (category id, name) of the 80 COCO object categories (instances_*2014.json "categories")
COCO_CATEGORIES: tuple[tuple[int, str], ...] = tuple(
    (int(i), n.replace("-", " "))
    for i, n in (
        item.split(":")
        for item in (
            "1:person 2:bicycle 3:car 4:motorcycle 5:airplane 6:bus 7:train 8:truck 9:boat "
            "10:traffic-light 11:fire-hydrant 13:stop-sign 14:parking-meter 15:bench 16:bird "
            "17:cat 18:dog 19:horse 20:sheep 21:cow 22:elephant 23:bear 24:zebra 25:giraffe "
            "27:backpack 28:umbrella 31:handbag 32:tie 33:suitcase 34:frisbee 35:skis "
            "36:snowboard 37:sports-ball 38:kite 39:baseball-bat 40:baseball-glove "
            "41:skateboard 42:surfboard 43:tennis-racket 44:bottle 46:wine-glass 47:cup "
            "48:fork 49:knife 50:spoon 51:bowl 52:banana 53:apple 54:sandwich 55:orange "
            "56:broccoli 57:carrot 58:hot-dog 59:pizza 60:donut 61:cake 62:chair 63:couch "
            "64:potted-plant 65:bed 67:dining-table 70:toilet 72:tv 73:laptop 74:mouse "
            "75:remote 76:keyboard 77:cell-phone 78:microwave 79:oven 80:toaster 81:sink "
            "82:refrigerator 84:book 85:clock 86:vase 87:scissors 88:teddy-bear 89:hair-drier "
            "90:toothbrush"
        ).split()
    )
)
# the 81 class names as config.yaml spells them (background first, spaces → underscores)
COCO_CLASSES: tuple[str, ...] = ("background",) + tuple(
    name.replace(" ", "_") for _, name in COCO_CATEGORIES
)


def category_map(categories: Sequence[Mapping]) -> tuple[dict[int, int], list[str]]:
    """Renumber an annotation file's ``categories`` 1..K in ascending id order.

    Returns:
        ``{category id: training id}`` and the K names (spaces → underscores) in that order.

    Raises:
        ValueError: an id repeats.
    """
    ids = sorted(int(c["id"]) for c in categories)
    if len(set(ids)) != len(ids):
        raise ValueError(f"category ids repeat: {ids}")
    names = {int(c["id"]): str(c["name"]).replace(" ", "_") for c in categories}
    return {cid: k + 1 for k, cid in enumerate(ids)}, [names[cid] for cid in ids]


def rle_counts_from_string(text: str) -> list[int]:
    """Decode a compressed RLE string (pycocotools ``rleFrString``): 5-bit groups offset by
    48, a continuation bit 0x20, sign extension from bit 0x10, and each count after the
    second stored as a difference to the count two places earlier."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            char = ord(text[pos]) - 48
            value |= (char & 0x1F) << shift
            more = bool(char & 0x20)
            pos, shift = pos + 1, shift + 5
            if not more and char & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def decode_rle(counts: Sequence[int] | str, size: Sequence[int]) -> np.ndarray:
    """``(H, W)`` bool mask of a COCO RLE: alternating runs of 0 and 1 (starting with 0) over
    the pixels in column-major order; ``size`` is ``[H, W]``.

    Raises:
        ValueError: the runs do not add up to H·W.
    """
    if isinstance(counts, str | bytes):
        counts = rle_counts_from_string(counts.decode() if isinstance(counts, bytes) else counts)
    height, width = int(size[0]), int(size[1])
    runs = np.asarray(counts, dtype=np.int64)
    if runs.sum() != height * width or (runs < 0).any():
        raise ValueError(f"RLE counts sum to {runs.sum()}, not {height}x{width}")
    values = np.arange(len(runs)) % 2 == 1
    flat = np.repeat(values, runs)
    return flat.reshape(width, height).T


def _polygon_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        if len(poly) >= 6:  # at least three points (an odd trailing coordinate is dropped)
            points = np.asarray(poly[: len(poly) // 2 * 2], dtype=np.float64).reshape(-1, 2)
            draw.polygon([tuple(p) for p in points.tolist()], fill=1)
    return np.asarray(canvas, dtype=bool)


def annotation_mask(segmentation: object, height: int, width: int) -> np.ndarray:
    """``(H, W)`` bool mask of one annotation's ``segmentation`` (polygon list or RLE dict).

    Raises:
        ValueError: an RLE's size differs from the image's, or the format is unknown.
    """
    if isinstance(segmentation, list):
        return _polygon_mask(segmentation, height, width)
    if isinstance(segmentation, Mapping) and "counts" in segmentation:
        size = [int(s) for s in segmentation["size"]]
        if size != [height, width]:
            raise ValueError(f"RLE size {size} differs from the image's [{height}, {width}]")
        return decode_rle(segmentation["counts"], size)
    raise ValueError(f"unknown segmentation format: {type(segmentation).__name__}")


def class_mask(
    annotations: Sequence[Mapping],
    height: int,
    width: int,
    categories: Mapping[int, int],
    *,
    crowd: str = "ignore",
) -> np.ndarray:
    """``(H, W)`` uint8 training ids of one image: 0 background, ``categories[id]`` for each
    instance (painted largest first, so smaller ones stay on top), crowd regions 255 under
    ``crowd="ignore"`` (unless an instance covers them) or their class under ``"label"``.

    Raises:
        ValueError: ``crowd`` is neither, or an annotation names an unknown category.
    """
    if crowd not in ("ignore", "label"):
        raise ValueError(f"crowd must be 'ignore' or 'label', got {crowd!r}")
    label = np.zeros((height, width), dtype=np.uint8)
    crowd_region = np.zeros((height, width), dtype=bool)
    instance_region = np.zeros((height, width), dtype=bool)
    order = sorted(annotations, key=lambda a: (-float(a.get("area", 0.0)), a.get("id", 0)))
    for ann in order:
        cid = int(ann["category_id"])
        if cid not in categories:
            raise ValueError(f"annotation {ann.get('id')} has unknown category_id {cid}")
        mask = annotation_mask(ann["segmentation"], height, width)
        if ann.get("iscrowd", 0) and crowd == "ignore":
            crowd_region |= mask
            continue
        label[mask] = categories[cid]
        instance_region |= mask
    label[crowd_region & ~instance_region] = IGNORE_INDEX
    return label


def image_labels(
    annotations: Sequence[Mapping], categories: Mapping[int, int], num_fg_classes: int
) -> np.ndarray:
    """``(K,)`` float32 multi-hot of the categories annotated in an image (crowds included);
    entry ``categories[id] - 1`` is 1 for each annotated category."""
    labels = np.zeros(num_fg_classes, dtype=np.float32)
    for ann in annotations:
        labels[categories[int(ann["category_id"])] - 1] = 1.0
    return labels
