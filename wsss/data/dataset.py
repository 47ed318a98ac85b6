"""The map-style training dataset over a VOC-format split (raw arrays; transforms by the caller).

Map-style datasets here are plain classes with ``__len__`` and ``__getitem__`` (all a torch
``DataLoader`` needs), so the jobs that only check or evaluate data never load torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from wsss.data.voc import image_path, mask_path
from wsss.io import load_image, load_label_png, load_saliency

__all__ = ["VOCSegmentation"]


class VOCSegmentation:
    """A VOC-format split as a map-style dataset; no transforms (the caller applies them).

    ``dataset[i]`` is a dict with ``"id"`` (str), ``"image"`` uint8 ``(H, W, 3)`` RGB, and, only
    when available, ``"mask"`` uint8 ``(H, W)`` (0..C-1, 255 ignore; when ``mask_dir`` is given) and
    ``"labels"`` float32 ``(K,)`` multi-hot (when ``image_labels`` is given) and ``"saliency"``
    float32 ``(H, W)`` in [0, 1] (when ``saliency_dir`` is given). Absent entries are
    left out rather than set to None, so ``default_collate`` works on what is there.

    Args:
        root: VOC-format root (containing ``JPEGImages``).
        ids: image ids of the split.
        mask_dir: mask folder (relative to ``root``, or an absolute path such as a pseudo-mask
            folder) or None.
        image_labels: image id → ``(K,)`` labels; must contain every id.
        saliency_dir: saliency folder (``<id>.png``; relative to ``root`` or absolute) or None.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        ids: Sequence[str],
        *,
        mask_dir: str | None,
        image_labels: Mapping[str, np.ndarray] | None = None,
        saliency_dir: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.ids = list(ids)
        self.mask_dir = mask_dir
        if image_labels is not None:
            missing = [i for i in self.ids if i not in image_labels]
            if missing:
                raise KeyError(f"image id {missing[0]!r} has no image-level labels")
        self.image_labels = image_labels
        self.saliency_dir = saliency_dir

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, object]:
        image_id = self.ids[index]
        item: dict[str, object] = {
            "id": image_id,
            "image": load_image(image_path(self.root, image_id)),
        }
        if self.mask_dir is not None:
            item["mask"] = load_label_png(mask_path(self.root, image_id, self.mask_dir))
        if self.saliency_dir is not None:
            item["saliency"] = load_saliency(mask_path(self.root, image_id, self.saliency_dir))
        if self.image_labels is not None:
            item["labels"] = np.asarray(self.image_labels[image_id], dtype=np.float32)
        return item
