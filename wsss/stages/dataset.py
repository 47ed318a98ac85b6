"""Dataset stages: generate the synthetic benchmark; check a dataset tree and index it."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from wsss.data import synthetic
from wsss.data.layouts import SplitFiles, layout_classes, missing_root_message
from wsss.data.voc import (
    IGNORE_INDEX,
    check_image_size,
    image_labels,
    split_path,
    validate_split,
)
from wsss.io import read_ids
from wsss.stages.common import DatasetIndex

__all__ = ["run_make_synthetic_voc", "run_check_dataset"]

log = logging.getLogger(__name__)


def run_make_synthetic_voc(
    root: str | os.PathLike, *, classes: Sequence[str], params: Mapping
) -> None:
    """Generate the synthetic VOC-format tree at ``root`` (replacing an old one)."""
    synthetic.generate(root, fg_class_names=list(classes[1:]), overwrite=True, **params)


def run_check_dataset(
    root: str | os.PathLike | None,
    out_index: str | os.PathLike,
    *,
    dataset: str,
    classes: Sequence[str],
    splits: Mapping[str, str],
    labels_file: str | None,
    check_pixels: bool,
    layout: str = "voc",
    max_image_pixels: int | None = None,
) -> None:
    """Validate every split of a dataset tree before any training, then write the index.

    Args:
        splits: split name → ground-truth folder used to check it (VOC: ``{"train_aug":
            "SegmentationClassAug", "val": "SegmentationClass"}``; Cityscapes: ``{"train":
            "gtFine", "val": "gtFine"}``; ADE20K: ``{"training": "annotations", ...}``).
        labels_file: image-level labels CSV relative to ``root`` (VOC layout); None derives
            labels from masks.
        check_pixels: decode every image (masks are decoded anyway outside the VOC layout:
            the image-level labels come from them).
        layout: ``voc``, ``cityscapes`` or ``ade20k`` (:mod:`wsss.data.layouts`).
        max_image_pixels: refuse an image of more pixels (width × height; None = no limit): the
            CRF of make_pseudo_labels needs memory in proportion, and a worker killed for it
            loses the whole stage.

    Raises:
        ValueError: one line naming the file (or split), before any training: an empty split,
            repeated ids, an image above ``max_image_pixels``, an unreadable image or mask, ...
    """
    if root is None or not Path(root).is_dir():
        raise FileNotFoundError(missing_root_message(dataset, root, splits, layout))
    size_limit = None
    if max_image_pixels is not None:
        size_limit = (max_image_pixels, f"datasets.{dataset}.max_image_pixels")
    if layout != "voc":
        _check_layout_config(dataset, layout, classes, labels_file)
        ids, labels = {}, {}
        for name, mask_dir in splits.items():
            files = SplitFiles(layout, Path(root), name, mask_dir)
            ids[name] = files.list_ids()
            check_split_ids(f"split {name!r} of {root} ({layout} layout)", ids[name])
            log.info("checking %d %s images of %s (%s)", len(ids[name]), name, root, layout)
            labels.update(
                _check_split_files(files, ids[name], len(classes), check_pixels, size_limit)
            )
        DatasetIndex.write(out_index, classes=classes, splits=ids, labels=labels, layout=layout)
        return
    root = Path(root)
    ids = {name: read_ids(split_path(root, name)) for name in splits}
    for name in splits:  # all lists first: they are quick to check, the images are not
        check_split_ids(str(split_path(root, name)), ids[name])
    for name, mask_dir in splits.items():
        log.info("checking %d %s images of %s", len(ids[name]), name, root)
        validate_split(
            root,
            ids[name],
            mask_dir=mask_dir,
            num_classes=len(classes),
            check_pixels=check_pixels,
            size_limit=size_limit,
        )
    labels = {}
    for name, mask_dir in splits.items():
        labels.update(
            image_labels(
                root,
                ids[name],
                fg_class_names=list(classes[1:]),
                mask_dir=mask_dir,
                labels_file=None if labels_file is None else root / labels_file,
            )
        )
    DatasetIndex.write(out_index, classes=classes, splits=ids, labels=labels)


def check_split_ids(source: str, ids: Sequence[str]) -> None:
    """A split must list at least one image, and each once: training would oversample a repeated
    id and evaluation count it twice.

    Raises:
        ValueError: naming ``source`` (the split file) and the repeated ids.
    """
    if not ids:
        raise ValueError(f"{source} lists no images: a split must not be empty")
    counts = Counter(ids)
    repeated = sorted(i for i, n in counts.items() if n > 1)
    if repeated:
        shown = ", ".join(repeated[:10]) + (", ..." if len(repeated) > 10 else "")
        raise ValueError(f"{source} lists {len(repeated)} id(s) more than once: {shown}")


def _check_layout_config(
    dataset: str, layout: str, classes: Sequence[str], labels_file: str | None
) -> None:
    """The config of a Cityscapes/ADE20K dataset must name the layout's classes in training-id
    order (they become the ``iou_<class>`` columns) and take labels from the masks."""
    expected = layout_classes(layout)
    if list(classes) != expected:
        raise ValueError(
            f"datasets.{dataset}.classes must be the {len(expected)} {layout} classes in "
            f"training-id order, {expected}; got {list(classes)}"
        )
    if labels_file is not None:
        raise ValueError(
            f"datasets.{dataset}.labels_file: the {layout} layout derives image-level labels "
            "from its masks; set it to null"
        )


def _check_split_files(
    files: SplitFiles,
    ids: Sequence[str],
    num_classes: int,
    check_pixels: bool,
    size_limit: tuple[int, str] | None,
) -> dict[str, np.ndarray]:
    """Check each image (readable; fully decoded with ``check_pixels``) and its mask (readable,
    same size, training ids < ``num_classes`` or 255); stop at the first problem, naming the
    file. Returns the image-level labels: ``(num_classes,)`` multi-hot of the classes present."""
    labels = {}
    for image_id in ids:
        image_file = files.image_path(image_id)
        try:
            with Image.open(image_file) as img:
                size = img.size
                if check_pixels:
                    img.load()
        except Exception as exc:  # PIL raises several unrelated types for corrupt files
            raise ValueError(f"unreadable image {image_file}: {exc}") from None
        check_image_size(image_file, size, size_limit)
        try:
            mask = files.load_mask(image_id)
        except (OSError, SyntaxError) as exc:  # PIL's errors for corrupt PNGs
            raise ValueError(f"unreadable mask {files.mask_path(image_id)}: {exc}") from None
        if mask.shape[::-1] != size:
            raise ValueError(
                f"mask {files.mask_path(image_id)} is {mask.shape[1]}x{mask.shape[0]} (WxH) but "
                f"its image {image_file} is {size[0]}x{size[1]}"
            )
        present = np.unique(mask)
        bad = present[(present >= num_classes) & (present != IGNORE_INDEX)]
        if bad.size:
            raise ValueError(
                f"mask {files.mask_path(image_id)} has training id(s) {bad.tolist()} outside "
                f"0..{num_classes - 1} and {IGNORE_INDEX}"
            )
        vector = np.zeros(num_classes, dtype=np.float32)
        vector[present[present < num_classes].astype(np.int64)] = 1.0
        labels[image_id] = vector
    return labels
