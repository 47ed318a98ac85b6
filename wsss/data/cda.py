"""Context decoupling augmentation (CDA): an instance bank from pseudo masks, and pasting.

Su et al., "Context Decoupling Augmentation for Weakly Supervised Semantic Segmentation",
ICCV 2021 (algorithms.md §2.2). Stage I keeps single-class images whose foreground covers 10–70 %
of the pixels and crops image and mask to the object's box; stage II pastes a rotated instance of
a class *absent* from an image into it, so the classifier sees objects out of their usual
context. Pure numpy functions; the random choices come from the caller's Generator.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from wsss.io import load_image, load_label_png, read_json

__all__ = [
    "PASTE_MODES",
    "extract_instance",
    "paste_instance",
    "pick_absent_class",
    "InstanceBank",
    "CDAPairTransform",
]

PASTE_MODES = ("fixed", "faithful")


def extract_instance(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    ratio_range: Sequence[float] = (0.1, 0.7),
) -> tuple[int, np.ndarray, np.ndarray] | None:
    """Stage I: the bank entry of one image, or None when it does not qualify.

    Kept when the pseudo mask holds at most two distinct values (background and one class; any
    other value, 255 included, counts as a third) and the foreground share #(mask ≠ 0)/#pixels
    lies in ``ratio_range`` (inclusive). The entry is cropped to the tight box of mask ≠ 0.

    Returns:
        ``(class id, image crop (h, w, 3) uint8, mask crop (h, w) uint8)`` or None.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} sizes differ")
    values = np.unique(mask)
    fg = mask != 0
    if len(values) > 2 or not fg.any():
        return None
    ratio = fg.mean()
    if not ratio_range[0] <= ratio <= ratio_range[1]:
        return None
    rows, cols = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return int(values[values != 0][0]), image[box].copy(), mask[box].copy()


def pick_absent_class(
    present: Sequence[int], bank_classes: Sequence[int], rng: np.random.Generator
) -> int | None:
    """A class uniformly among the bank's classes not in ``present`` (None if there is none)."""
    candidates = sorted(set(int(c) for c in bank_classes) - set(int(c) for c in present))
    return int(candidates[rng.integers(len(candidates))]) if candidates else None


def paste_instance(
    image: np.ndarray,
    inst_image: np.ndarray,
    inst_mask: np.ndarray,
    rng: np.random.Generator,
    *,
    max_angle: int = 90,
    size_cap: float = 0.7,
    mode: str = "fixed",
) -> tuple[np.ndarray, np.ndarray]:
    """Stage II (``data_aug_rotation``): rotate an instance by an integer angle in
    [−max_angle, max_angle] (canvas grown to fit, zero fill), shrink it to at most ``size_cap`` ×
    the image's height and width keeping its aspect ratio, and paste it at a uniform position
    where its mask is non-zero.

    ``mode="fixed"`` rotates and resizes the mask with nearest neighbours (the image: linear
    rotation, cv2 bilinear resize to the rounded size). ``"faithful"`` follows the release's
    ``data_aug_rotation`` (algorithms.md §2.2): the image crop and the *raw* uint8 id crop are
    rotated with cubic splines (``ndimage.rotate``'s defaults), capped at
    ``int(size_cap × side)``, and resized as ``scipy.misc.imresize`` does (PIL bilinear, uint8
    values left unscaled); the pasted pixels are the resized ids ≠ 0. The rim that survives
    depends on the class id (an interpolated id must stay ≥ 0.5).

    Returns:
        the new image (a copy) and the boolean mask of pasted pixels, both at ``image``'s size.
    """
    if mode not in PASTE_MODES:
        raise ValueError(f"paste mode must be one of {PASTE_MODES}, got {mode!r}")
    height, width = image.shape[:2]
    angle = int(rng.integers(-max_angle, max_angle + 1))
    place = _fixed_instance if mode == "fixed" else _released_instance
    crop, keep = place(inst_image, inst_mask, angle, (height, width), size_cap)
    h, w = keep.shape
    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    pasted = np.zeros((height, width), dtype=bool)
    pasted[top : top + h, left : left + w] = keep != 0
    out = np.array(image, copy=True)
    out[pasted] = crop[keep != 0]
    return out, pasted


def _fixed_instance(
    inst_image: np.ndarray,
    inst_mask: np.ndarray,
    angle: int,
    bounds: tuple[int, int],
    size_cap: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The clean variant: (rotated, resized image crop, its mask) with a nearest-neighbour
    mask."""
    height, width = bounds
    fg = (np.asarray(inst_mask) != 0).astype(np.uint8)
    crop = ndimage.rotate(inst_image, angle, axes=(1, 0), reshape=True, order=1, mode="constant")
    keep = ndimage.rotate(fg, angle, axes=(1, 0), reshape=True, order=0, mode="constant")
    h, w = keep.shape
    scale = min(1.0, size_cap * height / h, size_cap * width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # cv2 takes (width, height)
    if size != (w, h):
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR)
        keep = cv2.resize(keep, size, interpolation=cv2.INTER_NEAREST)
    return crop, keep


def _released_instance(
    inst_image: np.ndarray,
    inst_mask: np.ndarray,
    angle: int,
    bounds: tuple[int, int],
    size_cap: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The release's variant: (rotated, resized image crop, its resized uint8 id crop)."""
    height, width = bounds
    crop = ndimage.rotate(np.asarray(inst_image, np.uint8), angle, axes=(1, 0), order=3)
    ids = ndimage.rotate(np.asarray(inst_mask, np.uint8), angle, axes=(1, 0), order=3)
    fg_h, fg_w = ids.shape
    aspect = fg_w / fg_h
    if height * size_cap < fg_h:  # the release caps the height first, then the width
        fg_h = height * size_cap
        fg_w = fg_h * aspect
    if width * size_cap < fg_w:
        fg_w = width * size_cap
        fg_h = fg_w / aspect
    size = (max(1, int(fg_w)), max(1, int(fg_h)))  # PIL takes (width, height)
    crop = np.asarray(Image.fromarray(crop).resize(size, Image.BILINEAR))
    ids = np.asarray(Image.fromarray(ids).resize(size, Image.BILINEAR))
    return crop, ids


class InstanceBank:
    """The stage-I bank on disk: ``<root>/<fg class>/<id>.png`` (RGB crop) and
    ``<id>_mask.png`` (its mask, "L"), listed by ``<root>/index.json``
    (``{"instances": {"<fg class>": [ids]}}``, fg classes 0..K-1). Crops load on demand.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        index = read_json(self.root / "index.json")
        self.instances = {int(c): list(ids) for c, ids in index["instances"].items() if ids}
        if not self.instances:
            raise ValueError(f"instance bank {self.root} holds no instances")

    @property
    def classes(self) -> list[int]:
        return sorted(self.instances)

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.instances.values())

    def load(self, fg_class: int, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        folder = self.root / str(fg_class)
        return load_image(folder / f"{image_id}.png"), load_label_png(
            folder / f"{image_id}_mask.png"
        )


class CDAPairTransform:
    """Stage II as a sample transform: the original and a copy with a random instance of an
    absent class pasted in (label OR one-hot), each augmented *independently* by ``base``.

    Returns ``image`` ``(2, 3, crop, crop)`` and ``labels`` ``(2, K)`` (original first); a loss
    flattens the pair axis, so a loader batch of B items is a forward batch of 2B images.
    With every bank class present in the image, the copy equals the original.
    """

    def __init__(
        self,
        base,
        bank: InstanceBank,
        *,
        mode: str = "fixed",
        max_angle: int = 90,
        size_cap: float = 0.7,
    ) -> None:
        if mode not in PASTE_MODES:
            raise ValueError(f"paste mode must be one of {PASTE_MODES}, got {mode!r}")
        self.base, self.bank = base, bank
        self.mode, self.max_angle, self.size_cap = mode, int(max_angle), float(size_cap)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        labels = np.asarray(sample["labels"], dtype=np.float32)
        pasted = dict(sample, labels=labels.copy())
        k = pick_absent_class(np.flatnonzero(labels), self.bank.classes, rng)
        if k is not None:
            ids = self.bank.instances[k]
            inst_image, inst_mask = self.bank.load(k, ids[int(rng.integers(len(ids)))])
            pasted["image"], _ = paste_instance(
                sample["image"],
                inst_image,
                inst_mask,
                rng,
                max_angle=self.max_angle,
                size_cap=self.size_cap,
                mode=self.mode,
            )
            pasted["labels"][k] = 1.0
        views = [self.base(sample, rng), self.base(pasted, rng)]
        return {key: torch.stack([v[key] for v in views]) for key in ("image", "labels")}
