"""Stage convert_coco: a COCO-2014 tree → a VOC-format WSSS tree (``wsss.data.coco``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wsss.data.coco import category_map, class_mask, image_labels
from wsss.data.voc import mask_path, split_path, voc_palette, write_image_labels
from wsss.io import save_label_png, write_ids, write_json
from wsss.stages.common import atomic_dir

__all__ = ["COCO_SPLITS", "coco_sources", "missing_source_message", "run_convert_coco"]

log = logging.getLogger(__name__)

# COCO-2014 folder → the split name of the converted tree
COCO_SPLITS = {"train2014": "train", "val2014": "val"}


def coco_sources(source: str | os.PathLike) -> list[Path]:
    """What the conversion reads: each split's image folder and instance annotation file."""
    root = Path(source)
    return [
        path
        for folder in COCO_SPLITS
        for path in (root / folder, root / "annotations" / f"instances_{folder}.json")
    ]


def missing_source_message(dataset: str, source: str | None) -> str:
    """The one-line error for an unset or incomplete ``datasets.<dataset>.coco.source``."""
    state = "not set" if source is None else f"{str(source)!r}, which lacks files"
    wanted = ", ".join(f"{folder}/" for folder in COCO_SPLITS)
    files = ", ".join(f"annotations/instances_{folder}.json" for folder in COCO_SPLITS)
    return (
        f"datasets.{dataset}.coco.source is {state}: set it in config.yaml (or --config) to the "
        f"COCO-2014 folder holding {wanted} and {files}"
    )


def _link_or_copy(src: Path, dst: Path, images: str) -> None:
    if images == "symlink":
        dst.symlink_to(src.resolve())
    else:
        shutil.copyfile(src, dst)


def run_convert_coco(
    source: str | os.PathLike | None,
    out_root: str | os.PathLike,
    *,
    dataset: str,
    classes: Sequence[str],
    images: str = "symlink",
    crowd: str = "ignore",
) -> dict[str, int]:
    """Write the VOC-format tree of a COCO-2014 folder at ``out_root`` (replacing it).

    Tree: ``JPEGImages/<id>.jpg`` (links to, or copies of, the COCO images; id = file stem,
    e.g. ``COCO_val2014_000000000042``), ``SegmentationClass/<id>.png`` (palette PNG, 0
    background, 1..80, 255 crowd), ``ImageSets/Segmentation/{train,val}.txt`` (images with at
    least one annotation), ``cls_labels.csv`` and ``coco.json`` (category map, decisions,
    counts).

    Args:
        classes: ``datasets.<dataset>.classes``: background, then the annotation files'
            category names (spaces → underscores) in ascending category id order.
        images: ``symlink`` (absolute links; no copy of 19 GB) or ``copy``.
        crowd: ``ignore`` (255) or ``label`` (see :func:`wsss.data.coco.class_mask`).

    Returns:
        Split → number of images written.

    Raises:
        FileNotFoundError: the source or one of its files is missing (names the config key).
        ValueError: the classes disagree with the annotation files (names the key).
    """
    if images not in ("symlink", "copy"):
        raise ValueError(f"datasets.{dataset}.coco.images: 'symlink' or 'copy', got {images!r}")
    if source is None or not all(path.exists() for path in coco_sources(source)):
        raise FileNotFoundError(missing_source_message(dataset, source))
    source = Path(source)
    counts, skipped, mapping = {}, {}, None
    with atomic_dir(out_root) as tmp:
        labels: dict[str, np.ndarray] = {}
        for folder, split in COCO_SPLITS.items():
            ann_file = source / "annotations" / f"instances_{folder}.json"
            data = json.loads(ann_file.read_text())
            categories, names = category_map(data["categories"])
            if names != list(classes[1:]):
                raise ValueError(
                    f"datasets.{dataset}.classes must be background plus the {len(names)} "
                    f"categories of {ann_file} in id order, {['background', *names]}; got "
                    f"{list(classes)}"
                )
            mapping = {str(k): v for k, v in categories.items()}
            by_image = defaultdict(list)
            for ann in data["annotations"]:
                by_image[ann["image_id"]].append(ann)
            ids = []
            for info in sorted(data["images"], key=lambda i: i["file_name"]):
                anns = by_image.get(info["id"])
                if not anns:
                    continue
                image_id = Path(info["file_name"]).stem
                label = class_mask(anns, info["height"], info["width"], categories, crowd=crowd)
                save_label_png(mask_path(tmp, image_id, "SegmentationClass"), label, voc_palette())
                (tmp / "JPEGImages").mkdir(exist_ok=True)
                _link_or_copy(
                    source / folder / info["file_name"],
                    tmp / "JPEGImages" / f"{image_id}.jpg",
                    images,
                )
                labels[image_id] = image_labels(anns, categories, len(names))
                ids.append(image_id)
                if len(ids) % 5000 == 0:
                    log.info("%s: %d images converted", folder, len(ids))
            write_ids(split_path(tmp, split), ids)
            counts[split], skipped[split] = len(ids), len(data["images"]) - len(ids)
            log.info(
                "%s → %s: %d images (%d without annotations left out)",
                folder,
                split,
                counts[split],
                skipped[split],
            )
        write_image_labels(tmp / "cls_labels.csv", labels, list(classes[1:]))
        write_json(
            tmp / "coco.json",
            {
                "source": str(source),
                "splits": COCO_SPLITS,
                "category_to_train_id": mapping,
                "crowd": crowd,
                "overlap": "largest instance painted first, smaller ones on top",
                "images": images,
                "counts": counts,
                "without_annotations": skipped,
            },
        )
    return counts
