"""CDA stage I: the instance bank, from another experiment's pseudo masks (algorithms.md §2.2)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from wsss.data.cda import extract_instance
from wsss.data.voc import image_path
from wsss.io import load_image, load_label_png, write_json
from wsss.stages.common import DatasetIndex, atomic_dir, check_same_size, write_manifest

__all__ = ["run_make_instance_bank"]

log = logging.getLogger(__name__)


def run_make_instance_bank(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    mask_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str,
    ratio_range: Sequence[float],
) -> None:
    """Write the bank of single-class instances (:class:`wsss.data.cda.InstanceBank` layout):
    every image of ``split`` whose pseudo mask in ``mask_dir`` holds one class covering
    ``ratio_range`` of it, cropped to the object's box. PNGs and a JSON index, no pickles."""
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    instances: dict[int, list[str]] = {c: [] for c in range(index.num_fg_classes)}
    with atomic_dir(out_dir) as tmp:
        for image_id in ids:
            mask_file = Path(mask_dir) / f"{image_id}.png"
            image, mask = load_image(image_path(root, image_id)), load_label_png(mask_file)
            check_same_size(image[..., 0], mask, image_path(root, image_id), mask_file)
            entry = extract_instance(image, mask, ratio_range=ratio_range)
            if entry is None:
                continue
            value, crop, crop_mask = entry
            fg_class = value - 1
            if not 0 <= fg_class < index.num_fg_classes:
                raise ValueError(f"{mask_file}: label {value} is not a foreground class")
            folder = tmp / str(fg_class)
            folder.mkdir(exist_ok=True)
            Image.fromarray(crop).save(folder / f"{image_id}.png")
            Image.fromarray(crop_mask).save(folder / f"{image_id}_mask.png")
            instances[fg_class].append(image_id)
        counts = {index.classes[c + 1]: len(v) for c, v in instances.items()}
        write_json(tmp / "index.json", {"instances": instances, "counts": counts})
        write_manifest(
            tmp,
            stage="make_instance_bank",
            split=split,
            masks=str(mask_dir),
            ratio_range=list(ratio_range),
            count=sum(counts.values()),
        )
    log.info("instance bank: %d of %d images; per class %s", sum(counts.values()), len(ids), counts)
