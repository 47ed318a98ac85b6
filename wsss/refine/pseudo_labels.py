"""CRF-refined pseudo labels from CAMs: background plane, dense CRF, optional confident-region rule.

This is the S7 recipe of SMAF and the label-CRF step of IRN/CDA (algorithms.md §1.5 (b), §1.8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from wsss.cam.labels import cams_to_label, label_ids
from wsss.refine.crf import CRFParams, dense_crf

__all__ = ["crf_pseudo_label"]


def crf_pseudo_label(
    image_uint8_hwc: np.ndarray,
    cams: np.ndarray,
    keys: Sequence[int] | np.ndarray,
    *,
    bg_threshold: float,
    crf_params: Mapping[str, Any] | CRFParams,
    ignore_disagreement: bool = False,
    ignore_index: int = 255,
    num_labels: int | None = None,
) -> np.ndarray:
    """Pseudo label of one image: argmax of the CRF posterior over ``[bg_threshold; cams]``.

    The scores fed to the CRF are a constant plane ``bg_threshold`` followed by the K CAMs (so
    with the ``"labels"`` unary the CRF starts from exactly :func:`cams_to_label`'s map).

    Confident-region rule (``ignore_disagreement=True``): a pixel keeps its CRF label only where
    the CRF agrees with the un-refined threshold map ``cams_to_label(cams, keys, bg_threshold)``;
    where they differ (typically along object boundaries the CRF moved) it gets ``ignore_index``,
    so a segmentation network trained on the mask ignores those pixels.

    Args:
        image_uint8_hwc: (H, W, 3) uint8 raw RGB image.
        cams: (K, H, W) float CAMs of the present classes at image resolution; K may be 0 (an
            image with no foreground label comes out all background).
        keys: (K,) foreground-class indices of the CAM planes.
        bg_threshold: constant background score.
        crf_params: :class:`CRFParams` or its config mapping.
        ignore_disagreement: apply the confident-region rule above.
        ignore_index: label written on ignored pixels (must not be a class id).
        num_labels: None: the CRF runs over the image's K + 1 labels (IRN's convention); an
            int: over all ``num_labels`` labels of the dataset (background and every class),
            the absent ones starting with no pixel, as SMAF's release does over VOC's 21
            (algorithms.md §2.3 step 4). Needs the label unary.

    Returns:
        (H, W) uint8 label map in segmentation ids (0 = background, key + 1), plus
        ``ignore_index`` where the rule applies.

    Raises:
        ValueError: on bad shapes, keys, thresholds or CRF parameters, or an ``ignore_index``
            that is a label of this image or does not fit in uint8.
    """
    reference = cams_to_label(cams, keys, bg_threshold)  # validates cams, keys and threshold
    ids = label_ids(keys)
    if ignore_disagreement and (not 0 <= ignore_index <= 255 or ignore_index in ids):
        raise ValueError(f"ignore_index {ignore_index} must fit in uint8 and not be a label")
    cams = np.asarray(cams)
    if num_labels is None:
        # float64 so that the CRF's starting argmax ties exactly as cams_to_label's comparisons.
        probs = np.empty((cams.shape[0] + 1, *cams.shape[1:]), dtype=np.float64)
        probs[0] = bg_threshold
        probs[1:] = cams
        posterior = dense_crf(image_uint8_hwc, probs, crf_params)
        label = ids[posterior.argmax(axis=0)]
    else:
        label = _all_labels_crf(image_uint8_hwc, cams, ids, bg_threshold, crf_params, num_labels)
    if ignore_disagreement:
        label[label != reference] = ignore_index
    return label


def _all_labels_crf(
    image_uint8_hwc: np.ndarray,
    cams: np.ndarray,
    ids: np.ndarray,
    bg_threshold: float,
    crf_params: Mapping[str, Any] | CRFParams,
    num_labels: int,
) -> np.ndarray:
    """The CRF over every label of the dataset: the label unary of the thresholded map, each
    pixel's label against all ``num_labels`` (SMAF's release)."""
    cfg = crf_params if isinstance(crf_params, CRFParams) else CRFParams.from_mapping(crf_params)
    if cfg.unary != "labels":
        raise ValueError(
            f"a CRF over all labels needs the label unary (unary: labels), got {cfg.unary!r}"
        )
    if ids.max() >= num_labels:
        raise ValueError(f"label {ids.max()} does not fit in num_labels {num_labels}")
    # absent labels score below every real score, so the starting argmax is cams_to_label's
    probs = np.full((num_labels, *cams.shape[1:]), -1.0, dtype=np.float64)
    probs[0] = bg_threshold
    probs[ids[1:]] = cams
    posterior = dense_crf(image_uint8_hwc, probs, cfg)
    return posterior.argmax(axis=0).astype(np.uint8)
