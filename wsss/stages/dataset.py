"""Dataset stages: generate the synthetic benchmark; check a VOC-format tree and index it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from wsss.config import missing_root_message
from wsss.data import synthetic
from wsss.data.voc import image_labels, split_path, validate_split
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
) -> None:
    """Validate every split of a VOC-format tree before any training, then write the index.

    Args:
        splits: split name → mask folder used to check it (e.g. ``{"train_aug":
            "SegmentationClassAug", "val": "SegmentationClass"}``).
        labels_file: image-level labels CSV relative to ``root``; None derives labels from masks.
    """
    if root is None or not Path(root).is_dir():
        raise FileNotFoundError(missing_root_message(dataset, root, splits))
    root = Path(root)
    ids = {name: read_ids(split_path(root, name)) for name in splits}
    for name, mask_dir in splits.items():
        log.info("checking %d %s images of %s", len(ids[name]), name, root)
        validate_split(
            root, ids[name], mask_dir=mask_dir, num_classes=len(classes), check_pixels=check_pixels
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
