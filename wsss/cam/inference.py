"""Multi-scale + flip CAM inference and IRN max-normalisation (pure functions).

Images of one size are inferred together: per scale, one forward pass takes every image of the
batch and its mirror image. Each image's maps are those of a pass on it alone (BatchNorm in
eval mode and convolutions act on each sample separately).

Two procedures (config ``infer.procedure``): ``irn`` (:func:`multiscale_cams`, IRN's recipe,
also CDA's) and ``release`` (:func:`release_multiscale_cams`, the one SEAM, CPN, EPS and SMAF
release: PIL bicubic image scaling, each map resized straight to the image size).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from wsss.data.transforms import normalize_image

__all__ = [
    "NORMALIZATIONS",
    "PROCEDURES",
    "multiscale_cams",
    "release_multiscale_cams",
    "normalize_present",
    "fuse_cams",
    "size_batches",
]

NORMALIZATIONS = ("max", "minmax", "minmax_half")
PROCEDURES = ("irn", "release")


def multiscale_cams(
    model: nn.Module, image: torch.Tensor, *, scales: Sequence[float], flip: bool, stride: int = 1
) -> torch.Tensor:
    """Sum a model's CAMs over rescaled (and horizontally flipped) copies of an image.

    IRN recipe (Ahn et al., CVPR 2019): for each scale ``s`` the image is resized bilinearly
    (``align_corners=False``) to ``(round(H·s), round(W·s))``; ``model.cams`` runs on the batch
    ``[img, flip(img)]`` (just ``[img]`` without ``flip``); the flipped map is flipped back and the
    two are summed; each scale's map is resized bilinearly to the stride-aligned canvas
    ``(stride·⌈H/stride⌉, stride·⌈W/stride⌉)``, cropped to ``(H, W)``, and the scales are summed.
    The canvas keeps every feature cell ``stride`` pixels wide, as in IRN's ``high_res`` output.
    A batch of B images of one size takes one pass of ``[imgs, flip(imgs)]`` (2B) per scale.
    The model's train/eval mode is left to the caller (use ``model.eval()``); under autocast
    the maps are summed in float32.

    Args:
        model: exposes ``cams(x: (B, 3, h, w)) -> (B, K, h', w')``, on ``image``'s device.
        image: ``(3, H, W)`` normalised float image, or ``(B, 3, H, W)`` images of one size.
        scales: positive scale factors, e.g. ``(1.0, 0.5, 1.5, 2.0)``.
        flip: also evaluate the horizontally flipped image.
        stride: the model's output stride (1 = resize straight to ``(H, W)``).

    Returns:
        ``(K, H, W)`` (``(B, K, H, W)`` for a batch) float32 on ``image``'s device, not
        normalised.

    Raises:
        ValueError: on an image that is neither ``(3, H, W)`` nor ``(B, 3, H, W)``, or empty /
            non-positive scales.
    """
    single = image.ndim == 3
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(
            f"expected a (3, H, W) image or (B, 3, H, W) images, got shape {tuple(image.shape)}"
        )
    if len(scales) == 0 or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales!r}")
    images = image[None].float() if single else image.float()
    count, (height, width) = images.shape[0], images.shape[-2:]
    canvas = (stride * math.ceil(height / stride), stride * math.ceil(width / stride))
    total: torch.Tensor | None = None
    with torch.no_grad():
        for s in scales:
            size = (max(1, round(height * s)), max(1, round(width * s)))
            x = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
            if flip:
                x = torch.cat([x, x.flip(-1)], dim=0)
            cam = model.cams(x).float()
            cam_s = cam[:count] + cam[count:].flip(-1) if flip else cam
            cam_s = F.interpolate(cam_s, size=canvas, mode="bilinear", align_corners=False)
            cam_s = cam_s[:, :, :height, :width]
            total = cam_s if total is None else total + cam_s
    return total[0] if single else total


def release_multiscale_cams(
    model: nn.Module,
    images: np.ndarray,
    *,
    scales: Sequence[float],
    flip: bool,
    via_input_size: bool,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Sum a model's CAMs over scaled (and flipped) copies of uint8 images, as SEAM, CPN, EPS
    and SMAF release it (algorithms.md §1.3 (c), (d)).

    For each scale ``s`` the uint8 image is resized with PIL bicubic to
    ``(round(W·s), round(H·s))`` and then ImageNet-normalised; ``model.cams`` runs on the batch
    ``[imgs, flip(imgs)]``; every map is resized bilinearly (``align_corners=False``) straight
    to ``(H, W)`` (no stride-aligned canvas), the flipped ones flipped back, and all are summed.
    ``via_input_size``: the map is first upsampled (bilinear, ``align_corners=True``) to the
    scaled input's size, as SEAM's and CPN's networks return it.

    Args:
        model: exposes ``cams(x: (B, 3, h, w)) -> (B, K, h', w')``, on ``device``.
        images: uint8 ``(H, W, 3)`` image or ``(B, H, W, 3)`` images of one size.

    Returns:
        ``(K, H, W)`` (``(B, K, H, W)`` for a batch) float32 on ``device``, not normalised.

    Raises:
        ValueError: on images that are not uint8 ``(H, W, 3)`` / ``(B, H, W, 3)``, or empty /
            non-positive scales.
    """
    images = np.asarray(images)
    single = images.ndim == 3
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 (H, W, 3) or (B, H, W, 3) images, got {images.dtype} {images.shape}"
        )
    if len(scales) == 0 or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales!r}")
    batch = images[None] if single else images
    count, height, width = batch.shape[:3]
    total: torch.Tensor | None = None
    with torch.no_grad():
        for s in scales:
            size = (max(1, round(width * s)), max(1, round(height * s)))  # PIL: (w, h)
            x = torch.stack(
                [
                    normalize_image(np.array(Image.fromarray(img).resize(size, Image.BICUBIC)))
                    for img in batch
                ]
            ).to(device)
            if flip:
                x = torch.cat([x, x.flip(-1)], dim=0)
            cam = model.cams(x).float()
            if via_input_size:
                cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=True)
            cam = F.interpolate(cam, size=(height, width), mode="bilinear", align_corners=False)
            cam_s = cam[:count] + cam[count:].flip(-1) if flip else cam
            total = cam_s if total is None else total + cam_s
    return total[0] if single else total


def size_batches(
    sizes: Mapping[Hashable, tuple[int, int]], max_images: int
) -> list[list[Hashable]]:
    """Group ids by image size into batches of at most ``max_images``: ids of one size in
    ascending order, sizes in ascending order; every id in exactly one batch.

    Raises:
        ValueError: ``max_images`` < 1.
    """
    if max_images < 1:
        raise ValueError(f"images per batch must be >= 1, got {max_images!r}")
    groups: dict[tuple[int, int], list] = {}
    for key in sorted(sizes):
        groups.setdefault(tuple(sizes[key]), []).append(key)
    return [
        ids[i : i + max_images]
        for _, ids in sorted(groups.items())
        for i in range(0, len(ids), max_images)
    ]


def normalize_present(
    cams: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray, *, mode: str = "max"
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the present classes and normalise each map.

    ``mode``:

    - ``"max"`` (IRN, PSA, EPS): x / (max(x) + 1e-5).
    - ``"minmax"`` (SEAM, CPN; algorithms.md §1.3(c)): negatives clipped to 0, then
      (x − min − 1e-5) / (max − min + 1e-5) with min and max taken after the clipping, and
      values that end below 0 set to 0. (The released code zeroes x < min + 1e-5 *before*
      the division, which leaves those pixels at −(min + 1e-5)/(max − min + 1e-5); every
      consumer takes an argmax against a non-negative background score, where that equals 0.)
    - ``"minmax_half"``: CPN's released output, ``minmax`` ÷ 2 (its threshold sweep 0.20–0.59
      assumes it); downstream stages here expect maps that reach 1, so use ``minmax`` for them.

    Args:
        cams: ``(K_fg, H, W)`` non-negative CAMs (e.g. from :func:`multiscale_cams`).
        labels: ``(K_fg,)`` multi-hot image labels (non-zero = present).

    Returns:
        ``keys``: ``(K,)`` int64 indices of present classes (ascending);
        ``cams``: ``(K, H, W)`` float32, ``cams[k] / (max(cams[k]) + 1e-5)``. With no present
        class, shapes ``(0,)`` and ``(0, H, W)``.

    Raises:
        ValueError: if ``cams`` is not 3-D, ``labels`` does not have ``K_fg`` entries or ``mode``
            is unknown.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"CAM normalization must be one of {NORMALIZATIONS}, got {mode!r}")
    if isinstance(cams, torch.Tensor):
        cams = cams.detach().cpu().numpy()
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    cams = np.asarray(cams, dtype=np.float32)
    labels = np.asarray(labels)
    if cams.ndim != 3:
        raise ValueError(f"cams must be (K_fg, H, W), got shape {cams.shape}")
    if labels.shape != (cams.shape[0],):
        raise ValueError(f"labels shape {labels.shape} does not match cams shape {cams.shape}")
    keys = np.flatnonzero(labels).astype(np.int64)
    present = cams[keys]
    if mode == "max":
        peak = present.reshape(len(keys), -1).max(axis=1) if len(keys) else np.zeros(0)
        return keys, (present / (peak[:, None, None] + 1e-5)).astype(np.float32)
    present = np.maximum(present, 0)
    flat = present.reshape(len(keys), -1)
    lo = (flat.min(axis=1) if len(keys) else np.zeros(0))[:, None, None]
    hi = (flat.max(axis=1) if len(keys) else np.zeros(0))[:, None, None]
    out = np.maximum((present - lo - 1e-5) / (hi - lo + 1e-5), 0.0)
    if mode == "minmax_half":
        out = out / 2
    return keys, out.astype(np.float32)


def fuse_cams(
    model: nn.Module,
    image: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    *,
    scales: Sequence[float],
    flip: bool,
    stride: int = 1,
    normalization: str = "max",
) -> tuple[np.ndarray, np.ndarray]:
    """One image's fused maps: :func:`multiscale_cams` then :func:`normalize_present`.

    With an EPS network (``cams`` = foreground softmax) this is SMAF's multi-scale attention
    fusion F_c = Σ_s Σ_flip softmax(T(I_s))_c · y_c, then F_c / (max F_c + 1e-5)
    (algorithms.md §2.3 step 2): the fusion is a sum of softmax maps over scales and flips.

    Returns:
        ``keys`` ``(K,)`` present classes and their maps ``(K, H, W)`` float32.
    """
    cams = multiscale_cams(model, image, scales=scales, flip=flip, stride=stride)
    return normalize_present(cams, labels, mode=normalization)
