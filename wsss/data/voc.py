"""PASCAL VOC-format trees: class list, palette, layout, image-level labels, validation, dataset."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.io import atomic_path, load_label_png

__all__ = [
    "VOC_CLASSES",
    "IGNORE_INDEX",
    "voc_palette",
    "image_path",
    "mask_path",
    "split_path",
    "write_image_labels",
    "read_image_labels",
    "labels_from_mask",
    "image_labels",
    "validate_split",
]

logger = logging.getLogger(__name__)

VOC_CLASSES: tuple[str, ...] = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
IGNORE_INDEX = 255


def voc_palette() -> np.ndarray:
    """The VOC colour table: ``(256, 3)`` uint8, index → RGB.

    Bits 0, 1, 2 of the index go to the most significant free bit of R, G, B; the next three
    index bits fill the next bit down, and so on (algorithms.md §5.1).
    Index 255 → (224, 224, 192).
    """
    index = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.int64)
    for step in range(8):
        for channel in range(3):
            palette[:, channel] |= ((index >> (3 * step + channel)) & 1) << (7 - step)
    return palette.astype(np.uint8)


def image_path(root: str | os.PathLike, image_id: str) -> Path:
    """``<root>/JPEGImages/<image_id>.jpg``."""
    return Path(root) / "JPEGImages" / f"{image_id}.jpg"


def mask_path(root: str | os.PathLike, image_id: str, mask_dir: str) -> Path:
    """``<root>/<mask_dir>/<image_id>.png`` (``mask_dir``: e.g. ``SegmentationClassAug``)."""
    return Path(root) / mask_dir / f"{image_id}.png"


def split_path(root: str | os.PathLike, split: str) -> Path:
    """``<root>/ImageSets/Segmentation/<split>.txt``."""
    return Path(root) / "ImageSets" / "Segmentation" / f"{split}.txt"


def write_image_labels(
    path: str | os.PathLike, labels: Mapping[str, np.ndarray], fg_class_names: Sequence[str]
) -> None:
    """Atomically write image-level labels as CSV: header ``image_id,<fg names...>``, 0/1 cells.

    Args:
        labels: image id → ``(K,)`` multi-hot (any numeric dtype; nonzero means present).
        fg_class_names: the K foreground class names, in classifier order.
    """
    names = list(fg_class_names)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_id", *names])
        for image_id, vector in labels.items():
            vector = np.asarray(vector).reshape(-1)
            if vector.shape[0] != len(names):
                raise ValueError(
                    f"labels for {image_id!r} have {vector.shape[0]} entries, expected {len(names)}"
                )
            writer.writerow([image_id, *(int(v != 0) for v in vector)])


def read_image_labels(
    path: str | os.PathLike, fg_class_names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Read a labels CSV written by :func:`write_image_labels`.

    Returns:
        image id → ``(K,)`` float32 multi-hot.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: header differs from ``image_id`` + ``fg_class_names``, a row has the wrong
            length or a cell other than 0/1, or an id repeats (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image-level labels file not found: {path}")
    expected = ["image_id", *fg_class_names]
    out: dict[str, np.ndarray] = {}
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != expected:
            raise ValueError(f"labels file {path} has header {header}, expected {expected}")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(expected) or any(cell not in ("0", "1") for cell in row[1:]):
                raise ValueError(f"labels file {path} line {line_no}: bad row {row}")
            if row[0] in out:
                raise ValueError(f"labels file {path} line {line_no}: duplicate id {row[0]!r}")
            out[row[0]] = np.array([float(cell) for cell in row[1:]], dtype=np.float32)
    return out


def labels_from_mask(mask: np.ndarray, num_fg_classes: int) -> np.ndarray:
    """Image-level multi-hot labels of the foreground classes present in a segmentation mask.

    Args:
        mask: ``(H, W)`` integer label map; 0 = background, 1..K = classes, 255 = ignore.
        num_fg_classes: K.

    Returns:
        ``(K,)`` float32; entry ``c - 1`` is 1 when class ``c`` occurs in ``mask``.
    """
    values = np.unique(np.asarray(mask))
    bad = values[(values != IGNORE_INDEX) & ((values < 0) | (values > num_fg_classes))]
    if bad.size:
        raise ValueError(
            f"mask value(s) {bad.tolist()} out of range: expected 0..{num_fg_classes} or 255"
        )
    labels = np.zeros(num_fg_classes, dtype=np.float32)
    present = values[(values >= 1) & (values <= num_fg_classes)]
    labels[present.astype(np.int64) - 1] = 1.0
    return labels


def image_labels(
    root: str | os.PathLike,
    ids: Sequence[str],
    *,
    fg_class_names: Sequence[str],
    labels_file: str | os.PathLike | None = None,
    mask_dir: str = "SegmentationClassAug",
) -> dict[str, np.ndarray]:
    """Image-level labels for ``ids``: from ``labels_file`` when given, else from the masks.

    Returns:
        image id → ``(K,)`` float32 multi-hot, K = ``len(fg_class_names)``.

    Raises:
        KeyError: an id is missing from ``labels_file`` (names the id and the file).
    """
    if labels_file is not None:
        table = read_image_labels(labels_file, fg_class_names)
        missing = [i for i in ids if i not in table]
        if missing:
            raise KeyError(f"image id {missing[0]!r} not in labels file {labels_file}")
        return {i: table[i] for i in ids}
    num_fg = len(fg_class_names)
    out = {}
    for image_id in ids:
        path = mask_path(root, image_id, mask_dir)
        try:
            out[image_id] = labels_from_mask(load_label_png(path), num_fg)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return out


def check_image_size(
    path: str | os.PathLike, size: tuple[int, int], limit: tuple[int, str] | None
) -> None:
    """Refuse an image of more than ``limit = (pixels, config key)`` pixels (the dense CRF's
    memory grows with the pixel count; None = no limit).

    Raises:
        ValueError: naming the file, its size and the key.
    """
    if limit is None:
        return
    most, key = limit
    width, height = size
    if width * height > most:
        raise ValueError(
            f"image {path} is {width}x{height} (WxH) = {width * height} pixels, more than "
            f"{key} = {most}; shrink the image or raise the key (the CRF needs memory in "
            "proportion)"
        )


def validate_split(
    root: str | os.PathLike,
    ids: Sequence[str],
    *,
    mask_dir: str | None,
    num_classes: int,
    check_pixels: bool = True,
    size_limit: tuple[int, str] | None = None,
) -> None:
    """Check that every id of a split has a readable image (and mask); stop at the first problem.

    Always checked (headers only, fast): the image exists and PIL recognises it; the mask exists,
    is a "P" or "L" PNG, and has the image's size. With ``check_pixels`` the image and mask are
    fully decoded, which is the only way to find truncated files and out-of-range label values
    (any value not < ``num_classes`` and not 255). Decoding is the slow part (JPEG decoding of
    VOC ``train_aug`` takes tens of seconds); header-only checks take a few seconds.

    Args:
        mask_dir: mask folder under ``root``, or None to check images only.
        num_classes: number of segmentation classes including background (21 for VOC).
        size_limit: (most pixels per image, the config key that sets it) or None
            (:func:`check_image_size`).

    Raises:
        FileNotFoundError: a listed image or mask is missing (names the file).
        ValueError: an unreadable/truncated image or mask, a size mismatch, or bad label values;
            one line naming the file.
    """
    for image_id in ids:
        img_file = image_path(root, image_id)
        if not img_file.is_file():
            raise FileNotFoundError(f"image of id {image_id!r} not found: {img_file}")
        try:
            with Image.open(img_file) as img:
                size = img.size
                if check_pixels:
                    img.load()
        except Exception as exc:  # PIL raises several unrelated types for corrupt files
            raise ValueError(f"unreadable image {img_file}: {exc}") from None
        check_image_size(img_file, size, size_limit)
        if mask_dir is None:
            continue
        lbl_file = mask_path(root, image_id, mask_dir)
        if not lbl_file.is_file():
            raise FileNotFoundError(f"mask of id {image_id!r} not found: {lbl_file}")
        try:
            with Image.open(lbl_file) as lbl:
                lbl_size, lbl_mode = lbl.size, lbl.mode
                values = np.unique(np.asarray(lbl)) if check_pixels else None
        except Exception as exc:
            raise ValueError(f"unreadable mask {lbl_file}: {exc}") from None
        if lbl_mode not in ("P", "L"):
            raise ValueError(f"mask {lbl_file} has mode {lbl_mode!r}; expected 'P' or 'L'")
        if lbl_size != size:
            raise ValueError(
                f"mask {lbl_file} is {lbl_size[0]}x{lbl_size[1]} (WxH) but its image {img_file} "
                f"is {size[0]}x{size[1]}"
            )
        if values is not None:
            bad = values[(values >= num_classes) & (values != IGNORE_INDEX)]
            if bad.size:
                raise ValueError(
                    f"mask {lbl_file} has label value(s) {bad.tolist()} outside "
                    f"0..{num_classes - 1} and {IGNORE_INDEX}"
                )
    logger.info("validated %d ids under %s (check_pixels=%s)", len(ids), root, check_pixels)
