"""Paired image/mask augmentations for training, driven by an explicit numpy Generator.

Every random choice comes from the ``rng`` argument, so a sample's augmentation is a pure
function of (seed, epoch, index): training is repeatable and resumable mid-epoch.
The primitives follow the conventions shared by the WSSS codebases (algorithms.md §1.1):
random rescale, "container" crop (image filled with 0 after normalisation, mask with 255),
horizontal flip with p = 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_MEAN_PIXEL = tuple(round(255 * m) for m in IMAGENET_MEAN)  # the padding of crops

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize_image",
    "random_scale",
    "random_crop",
    "random_hflip",
    "color_jitter",
    "augment_pair",
    "augment_with_maps",
    "TrainTransform",
    "MapsTransform",
]


def normalize_image(image: np.ndarray) -> torch.Tensor:
    """ImageNet-normalise a uint8 ``(H, W, 3)`` RGB image into a ``(3, H, W)`` float32 tensor,
    ``(image / 255 − mean) / std`` (the CAM-family convention of IRN/PSA/SEAM, spec §1.1)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    return (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(
        3, 1, 1
    )


def random_scale(
    image: np.ndarray,
    mask: np.ndarray | None,
    scale_range: Sequence[float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rescale by s ~ U[scale_range]; image bilinear, mask nearest (labels must not be blended)."""
    lo, hi = scale_range
    s = float(rng.uniform(lo, hi))
    h, w = image.shape[:2]
    size = (max(1, round(w * s)), max(1, round(h * s)))  # cv2 takes (width, height)
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if mask is not None:
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
    return image, mask


def random_crop(
    image: np.ndarray,
    mask: np.ndarray | None,
    crop_size: int,
    rng: np.random.Generator,
    *,
    image_fill: Sequence[float] | float = 0.0,
    ignore_index: int = 255,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Container crop to ``crop_size``²: pad (image with ``image_fill``, mask with ignore) where
    the image is smaller, take a random window where it is larger; both axes independently."""
    h, w = image.shape[:2]
    out_img = np.empty((crop_size, crop_size, image.shape[2]), dtype=image.dtype)
    out_img[...] = np.asarray(image_fill, dtype=image.dtype)
    out_mask = None if mask is None else np.full((crop_size, crop_size), ignore_index, mask.dtype)

    def _axis(size: int) -> tuple[int, int, int]:
        # (source start, destination start, length) along one axis.
        if size > crop_size:
            return int(rng.integers(0, size - crop_size + 1)), 0, crop_size
        return 0, int(rng.integers(0, crop_size - size + 1)), size

    sy, dy, ly = _axis(h)
    sx, dx, lx = _axis(w)
    out_img[dy : dy + ly, dx : dx + lx] = image[sy : sy + ly, sx : sx + lx]
    if out_mask is not None:
        out_mask[dy : dy + ly, dx : dx + lx] = mask[sy : sy + ly, sx : sx + lx]
    return out_img, out_mask


def random_hflip(
    image: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    if rng.random() < 0.5:
        image = image[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    return np.ascontiguousarray(image), None if mask is None else np.ascontiguousarray(mask)


def color_jitter(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness/contrast/saturation jitter of a uint8 RGB image, each factor ~ U[1±strength]."""
    if strength <= 0:
        return image
    img = image.astype(np.float32)
    b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
    img = img * b
    img = (img - img.mean()) * c + img.mean()
    gray = img.mean(axis=2, keepdims=True)
    img = (img - gray) * s + gray
    return np.clip(img, 0, 255).astype(np.uint8)


def augment_pair(
    image: np.ndarray,
    mask: np.ndarray | None,
    rng: np.random.Generator,
    *,
    scale_range: Sequence[float],
    crop_size: int,
    jitter: float = 0.0,
    ignore_index: int = 255,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scale → flip → jitter → crop a uint8 RGB image (and its mask).

    The crop pads the image with the ImageNet mean pixel, so padding is ~0 after normalisation
    (the "container" convention), and the mask with ``ignore_index``.

    Returns:
        image ``(crop, crop, 3)`` uint8 and mask ``(crop, crop)`` uint8 (or None).
    """
    image, mask = random_scale(image, mask, scale_range, rng)
    image, mask = random_hflip(image, mask, rng)
    image = color_jitter(image, jitter, rng)
    return random_crop(
        image, mask, crop_size, rng, image_fill=IMAGENET_MEAN_PIXEL, ignore_index=ignore_index
    )


def augment_with_maps(
    image: np.ndarray,
    maps: np.ndarray,
    rng: np.random.Generator,
    *,
    scale_range: Sequence[float],
    crop_size: int,
    jitter: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`augment_pair` for an image and float maps ``(H, W, C)`` (saliency, fused CAMs):
    both rescaled bilinearly, flipped and cropped together; the jitter touches the image only;
    the crop pads the maps with 0 (EPS/SMAF: padding is neither salient nor a class).

    Draws from ``rng`` in :func:`augment_pair`'s order.

    Returns:
        image ``(crop, crop, 3)`` uint8 and maps ``(crop, crop, C)`` float32.
    """
    channels = image.shape[2]
    stack = np.concatenate([image.astype(np.float32), maps.astype(np.float32)], axis=2)
    stack, _ = random_scale(stack, None, scale_range, rng)
    stack, _ = random_hflip(stack, None, rng)
    pixels = color_jitter(
        np.clip(np.round(stack[..., :channels]), 0, 255).astype(np.uint8), jitter, rng
    )
    stack = np.concatenate([pixels.astype(np.float32), stack[..., channels:]], axis=2)
    fill = [*IMAGENET_MEAN_PIXEL, *([0.0] * maps.shape[2])]
    stack, _ = random_crop(stack, None, crop_size, rng, image_fill=fill)
    return stack[..., :channels].astype(np.uint8), stack[..., channels:]


class TrainTransform:
    """A dataset sample → augmented, normalised tensors, drawing from the given RNG.

    Keeps ``labels`` (image-level, float32) and turns ``mask`` into int64 when the sample has
    them. A class rather than a closure, so DataLoader worker processes can pickle it.
    """

    def __init__(self, *, scale_range: Sequence[float], crop_size: int, jitter: float) -> None:
        self.scale_range, self.crop_size, self.jitter = scale_range, crop_size, jitter

    @classmethod
    def from_mapping(cls, train: Mapping) -> TrainTransform:
        """Build from a stage's ``train`` config (extra keys are ignored)."""
        return cls(
            scale_range=train["scale_range"], crop_size=train["crop_size"], jitter=train["jitter"]
        )

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        image, mask = augment_pair(
            sample["image"],
            sample.get("mask"),
            rng,
            scale_range=self.scale_range,
            crop_size=self.crop_size,
            jitter=self.jitter,
        )
        out = {"image": normalize_image(image)}
        if mask is not None:
            out["mask"] = torch.from_numpy(mask.astype(np.int64))
        if "labels" in sample:
            out["labels"] = torch.from_numpy(sample["labels"])
        return out


class MapsTransform:
    """:class:`TrainTransform` for samples that carry dense float maps besides the image.

    ``keys`` name the maps: each ``sample[key]`` is ``(H, W)`` or ``(C, H, W)`` float in [0, 1]
    (e.g. ``"saliency"``, ``"fused"``); each comes back as a ``(C, crop, crop)`` float32 tensor,
    augmented jointly with the image (:func:`augment_with_maps`).
    """

    def __init__(
        self, keys: Sequence[str], *, scale_range: Sequence[float], crop_size: int, jitter: float
    ) -> None:
        self.keys = tuple(keys)
        self.scale_range, self.crop_size, self.jitter = scale_range, crop_size, jitter

    @classmethod
    def from_mapping(cls, keys: Sequence[str], train: Mapping) -> MapsTransform:
        return cls(
            keys,
            scale_range=train["scale_range"],
            crop_size=train["crop_size"],
            jitter=train["jitter"],
        )

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        planes = [np.asarray(sample[k], dtype=np.float32) for k in self.keys]
        planes = [p[None] if p.ndim == 2 else p for p in planes]
        maps = np.concatenate(planes, axis=0).transpose(1, 2, 0)
        image, maps = augment_with_maps(
            sample["image"],
            maps,
            rng,
            scale_range=self.scale_range,
            crop_size=self.crop_size,
            jitter=self.jitter,
        )
        out = {"image": normalize_image(image)}
        start = 0
        for key, plane in zip(self.keys, planes, strict=True):
            stop = start + plane.shape[0]
            out[key] = torch.from_numpy(
                np.ascontiguousarray(maps[..., start:stop].transpose(2, 0, 1))
            )
            start = stop
        if "labels" in sample:
            out["labels"] = torch.from_numpy(sample["labels"])
        return out
