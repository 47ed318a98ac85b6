"""Confident-region labels and pair labels for training an affinity / boundary network.

Stage S4–S5 of algorithms.md (§1.5, §1.6):

* PSA: Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision",
  CVPR 2018 — "la/ha" labels from CRF-refined CAMs with a weak (α low) and a strong (α high)
  background score; SEAM (Wang et al., "Self-supervised Equivariant Attention Mechanism for
  Weakly Supervised Semantic Segmentation", CVPR 2020) reuses the recipe with α ∈ {4, 24}.
* IRN: Ahn, Cho & Kwak, "Weakly Supervised Learning of Instance Segmentation with Inter-pixel
  Relations", CVPR 2019 — ``cam_to_ir_label``: label-unary CRFs of the CAMs thresholded at a
  high (0.30) and a low (0.05) background score.

Label maps are in segmentation ids (0 = background, ``key + 1`` for classifier index ``key``, see
:func:`wsss.cam.labels.label_ids`) with ``ignore_index`` (255) on unsure pixels. Pair labels use the
layout of :mod:`wsss.refine.random_walk`: for offsets ``D = pair_offsets(r)`` entry ``[p, y, x]``
is the pair ((y, x), (y + dy_p, x + dx_p)); pairs leaving the map are invalid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from wsss.cam.labels import label_ids
from wsss.refine.crf import CRFParams, dense_crf
from wsss.refine.pseudo_labels import crf_pseudo_label
from wsss.refine.random_walk import pair_offsets

__all__ = [
    "combine_irn_labels",
    "combine_psa_labels",
    "irn_confident_labels",
    "psa_confident_labels",
    "psa_background",
    "pair_labels",
]


def _check_ignore(ignore_index: int, ids: np.ndarray | None = None) -> int:
    if isinstance(ignore_index, bool) or int(ignore_index) != ignore_index:
        raise ValueError(f"ignore_index must be an integer, got {ignore_index!r}")
    ignore_index = int(ignore_index)
    if not 0 < ignore_index <= 255:
        raise ValueError(
            f"ignore_index {ignore_index} must lie in [1, 255] (uint8, not background)"
        )
    if ids is not None and ignore_index in ids:
        raise ValueError(f"ignore_index {ignore_index} is a label of this image")
    return ignore_index


def _same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{names[0]} {a.shape} and {names[1]} {b.shape} must be equal (H, W) maps")


def combine_irn_labels(
    fg_label: np.ndarray, bg_label: np.ndarray, *, ignore_index: int = 255
) -> np.ndarray:
    """IRN's rule joining the two CRF label maps of ``cam_to_ir_label`` (Ahn et al., CVPR 2019).

    ``conf = fg_label; conf[fg_label == 0] = ignore; conf[fg_label + bg_label == 0] = 0``: a pixel
    keeps its class where the high-threshold map says foreground, is background only where both
    maps say background, and is unsure otherwise (foreground for the low threshold only). The sum
    test of the original is written as ``(fg == 0) & (bg == 0)`` (same result for label ids >= 0,
    without uint8 overflow).

    Args:
        fg_label: (H, W) integer ids from the high background score (0.30, confident fg).
        bg_label: (H, W) integer ids from the low background score (0.05, confident bg).
        ignore_index: value of unsure pixels.

    Returns:
        (H, W) uint8 confident-region label map.
    """
    fg, bg = np.asarray(fg_label), np.asarray(bg_label)
    _same_shape(fg, bg, ("fg_label", "bg_label"))
    ignore_index = _check_ignore(ignore_index)
    conf = fg.astype(np.uint8)
    conf[fg == 0] = ignore_index
    conf[(fg == 0) & (bg == 0)] = 0
    return conf


def combine_psa_labels(
    low_label: np.ndarray, high_label: np.ndarray, *, ignore_index: int = 255
) -> np.ndarray:
    """PSA's rule joining the la (α low) and ha (α high) label maps (Ahn & Kwak, CVPR 2018).

    ``label = la; label[la == 0] = ignore; label[ha == 0] = 0``: the class of la where la says
    foreground (confident foreground), background where ha says background (confident
    background — ha's background score is tiny, so this overrides la), unsure in between.

    Args:
        low_label: (H, W) integer ids, argmax of the CRF posterior with α low (la).
        high_label: (H, W) integer ids, argmax with α high (ha).
        ignore_index: value of unsure pixels.

    Returns:
        (H, W) uint8 confident-region label map.
    """
    low, high = np.asarray(low_label), np.asarray(high_label)
    _same_shape(low, high, ("low_label", "high_label"))
    ignore_index = _check_ignore(ignore_index)
    label = low.astype(np.uint8)
    label[low == 0] = ignore_index
    label[high == 0] = 0
    return label


def irn_confident_labels(
    image_uint8_hwc: np.ndarray,
    cams: np.ndarray,
    keys: Sequence[int] | np.ndarray,
    *,
    fg_threshold: float = 0.30,
    bg_threshold: float = 0.05,
    crf_params: Mapping[str, Any] | CRFParams,
    ignore_index: int = 255,
) -> np.ndarray:
    """IRN's confident-region label of one image (``cam_to_ir_label``, Ahn et al., CVPR 2019).

    ``fg_conf`` = argmax of the CRF posterior over ``[fg_threshold plane; cams]`` mapped to
    segmentation ids, ``bg_conf`` likewise with ``bg_threshold``; they are joined by
    :func:`combine_irn_labels`. IRN uses the label unary (CRF-label-IRN of algorithms.md §1.5:
    ``{"unary": "labels", "gt_prob": 0.7, "gaussian": {"sxy": 3, "compat": 3}, "bilateral":
    {"sxy": 50, "srgb": 5, "compat": 10}, "iterations": 10}``), under which the CRF starts from
    :func:`wsss.cam.labels.cams_to_label` at each threshold.

    Args:
        image_uint8_hwc: (H, W, 3) uint8 raw RGB image.
        cams: (K, H, W) float CAMs of the present classes at image resolution (IRN: the
            max-normalised ``high_res`` CAMs); K may be 0 (the label is then all background).
        keys: (K,) foreground-class indices of the CAM planes.
        fg_threshold: background score of the confident-foreground map (IRN ``conf_fg_thres``).
        bg_threshold: background score of the confident-background map (``conf_bg_thres``).
        crf_params: :class:`CRFParams` or its config mapping.
        ignore_index: value of unsure pixels (IRN: 255).

    Returns:
        (H, W) uint8 map: segmentation ids (0 = background, key + 1) and ``ignore_index``.

    Raises:
        ValueError: on bad shapes, keys, thresholds, CRF parameters or ``ignore_index``.
    """
    ignore_index = _check_ignore(ignore_index, label_ids(keys))
    fg_conf = crf_pseudo_label(
        image_uint8_hwc, cams, keys, bg_threshold=fg_threshold, crf_params=crf_params
    )
    bg_conf = crf_pseudo_label(
        image_uint8_hwc, cams, keys, bg_threshold=bg_threshold, crf_params=crf_params
    )
    return combine_irn_labels(fg_conf, bg_conf, ignore_index=ignore_index)


def psa_background(cams: np.ndarray, alpha: float) -> np.ndarray:
    """PSA's background score ``(1 − max_c cam_c)^α`` (Ahn & Kwak, CVPR 2018), float64 (H, W).

    Args:
        cams: (K, H, W) CAMs in [0, 1]; with K = 0 the score is 1 everywhere.
        alpha: exponent; a low α gives a large background score (only strong CAM stays
            foreground), a high α a tiny one (only very weak CAM becomes background).
    """
    cams = np.asarray(cams)
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    if cams.shape[0] == 0:
        return np.ones(cams.shape[1:], dtype=np.float64)
    return (1.0 - cams.max(axis=0).astype(np.float64)) ** alpha


def psa_confident_labels(
    image_uint8_hwc: np.ndarray,
    cams: np.ndarray,
    keys: Sequence[int] | np.ndarray,
    *,
    alpha_low: float = 4.0,
    alpha_high: float = 32.0,
    crf_params: Mapping[str, Any] | CRFParams,
    ignore_index: int = 255,
) -> np.ndarray:
    """PSA / SEAM "la/ha" confident-region label of one image (Ahn & Kwak, CVPR 2018).

    For α in (``alpha_low``, ``alpha_high``): scores ``[(1 − max_c cam_c)^α; cams]`` (not
    renormalised) → dense CRF → argmax → segmentation ids; la (α low) and ha (α high) are joined by
    :func:`combine_psa_labels`. PSA uses the softmax unary (CRF-softmax-PSA of algorithms.md
    §1.5: ``{"unary": "softmax", "gaussian": {"sxy": 3, "compat": 3}, "bilateral": {"sxy": 80,
    "srgb": 13, "compat": 10}, "iterations": 10}``); PSA uses α = 4 / 32, SEAM (Wang et al.,
    CVPR 2020) α = 4 / 24.

    Deliberate difference: PSA stores the two CRF posteriors and builds the label inside its
    AffinityNet data loader, after cropping and 8×8 average pooling of the score maps (padding,
    where every score is < 1e-5, becomes 255). Here the label is built once at full resolution;
    the trainer downscales it (nearest) to the feature grid and pads crops with ``ignore_index``.

    Args:
        image_uint8_hwc: (H, W, 3) uint8 raw RGB image.
        cams: (K, H, W) float CAMs of the present classes in [0, 1] (max-normalised), at image
            resolution; K may be 0 (the label is then all background).
        keys: (K,) foreground-class indices of the CAM planes.
        alpha_low: background exponent of la (confident foreground).
        alpha_high: background exponent of ha (confident background).
        crf_params: :class:`CRFParams` or its config mapping.
        ignore_index: value of unsure pixels (PSA: 255).

    Returns:
        (H, W) uint8 map: segmentation ids (0 = background, key + 1) and ``ignore_index``.

    Raises:
        ValueError: on bad shapes, keys, alphas, CAM values outside [0, 1], CRF parameters or
            ``ignore_index``.
    """
    ids = label_ids(keys)
    ignore_index = _check_ignore(ignore_index, ids)
    cams = np.asarray(cams)
    if cams.ndim != 3 or cams.shape[0] != ids.size - 1:
        raise ValueError(
            f"cams must have shape (K, H, W) with K = {ids.size - 1}, got {cams.shape}"
        )
    if not np.issubdtype(cams.dtype, np.floating) or not np.isfinite(cams).all():
        raise ValueError(f"cams must be finite floats, got dtype {cams.dtype}")
    if cams.size and (cams.min() < 0 or cams.max() > 1):
        raise ValueError(
            f"cams must lie in [0, 1] (max-normalised), got [{cams.min()}, {cams.max()}]"
        )
    labels = []
    for alpha in (alpha_low, alpha_high):
        probs = np.empty((cams.shape[0] + 1, *cams.shape[1:]), dtype=np.float64)
        probs[0] = psa_background(cams, alpha)
        probs[1:] = cams
        posterior = dense_crf(image_uint8_hwc, probs, crf_params)
        labels.append(ids[posterior.argmax(axis=0)])
    return combine_psa_labels(labels[0], labels[1], ignore_index=ignore_index)


def pair_labels(
    labels: torch.Tensor | np.ndarray, radius: int, *, ignore_index: int = 255
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Affinity labels of every pixel pair within ``radius`` (PSA, CVPR 2018; IRN, CVPR 2019).

    A pair (i, j) is valid when both pixels lie in the map and neither label is ``ignore_index``;
    a valid pair is background-positive if both labels are 0, foreground-positive if they are
    equal and > 0, and negative if they differ. Deliberate difference from the originals, which
    only take "from" pixels in the interior window [0, h − r + 1) × [r − 1, w − r + 1): here every
    in-map pair counts (pairs leaving the map are simply invalid), matching the layout of
    :mod:`wsss.refine.random_walk`.

    Args:
        labels: (h, w) or (B, h, w) integer label map at the affinity resolution.
        radius: pair radius r; the offsets are ``pair_offsets(radius)`` (P of them).
        ignore_index: label of pixels excluded from every pair.

    Returns:
        ``(bg_pos, fg_pos, neg)``: bool tensors of shape (P, h, w) or (B, P, h, w) on the labels'
        device; entry [..., p, y, x] describes the pair ((y, x), (y + dy_p, x + dx_p)).

    Raises:
        ValueError: on a non-integer or wrongly shaped label map or a bad radius.
    """
    offsets = pair_offsets(radius)
    lab = torch.as_tensor(labels)
    if lab.ndim not in (2, 3):
        raise ValueError(f"labels must have shape (h, w) or (B, h, w), got {tuple(lab.shape)}")
    if lab.dtype == torch.bool or lab.dtype.is_floating_point or lab.dtype.is_complex:
        raise ValueError(f"labels must have an integer dtype, got {lab.dtype}")
    batched = lab.ndim == 3
    lab = lab.long() if batched else lab.long().unsqueeze(0)
    height, width = lab.shape[-2:]
    valid = lab != ignore_index
    r = radius - 1  # offsets: 0 <= dy <= r, -r <= dx <= r
    # Pad right/left/bottom so every shifted window exists; padded pixels are invalid.
    lab_pad = F.pad(lab, (r, r, 0, r), value=0)
    valid_pad = F.pad(valid, (r, r, 0, r), value=False)
    first_bg = valid & (lab == 0)
    bg_pos, fg_pos, neg = [], [], []
    for dy, dx in offsets:
        second = lab_pad[:, dy : dy + height, r + dx : r + dx + width]
        both = valid & valid_pad[:, dy : dy + height, r + dx : r + dx + width]
        same = both & (second == lab)
        bg_pos.append(same & first_bg)
        fg_pos.append(same & (lab > 0))
        neg.append(both & (second != lab))
    out = tuple(torch.stack(masks, dim=1) for masks in (bg_pos, fg_pos, neg))
    if not batched:
        out = tuple(m.squeeze(0) for m in out)
    return out  # type: ignore[return-value]
