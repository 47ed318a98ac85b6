"""CAM to label maps: background-threshold argmax, all-thresholds confusion sweeps, threshold grids.

Conventions (algorithms.md §1.4): ``cams`` (K, H, W) hold the maps of the K classes present in the
image, ``keys`` (K,) their foreground-class indices 0..K_fg-1 (classifier space). Label maps are in
segmentation space: 0 = background, key + 1 for class ``key``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["label_ids", "cams_to_label", "sweep_confusion", "threshold_grid"]


def label_ids(keys: Sequence[int] | np.ndarray) -> np.ndarray:
    """Segmentation id of every plane of ``[background; cams]``.

    Args:
        keys: (K,) integer foreground-class indices of the CAM planes, each in [0, 253] so that
            key + 1 fits in uint8 below the ignore value 255.

    Returns:
        (K + 1,) uint8 lookup table: entry 0 is 0 (background), entry i is keys[i-1] + 1.

    Raises:
        ValueError: if ``keys`` is not a 1-D integer sequence or a key is out of range.
    """
    keys_arr = np.asarray(keys)
    if keys_arr.size == 0:
        return np.zeros(1, dtype=np.uint8)
    if keys_arr.ndim != 1 or not np.issubdtype(keys_arr.dtype, np.integer):
        raise ValueError(
            "keys must be a 1-D integer sequence, "
            f"got shape {keys_arr.shape} dtype {keys_arr.dtype}"
        )
    bad = keys_arr[(keys_arr < 0) | (keys_arr > 253)]
    if bad.size:
        raise ValueError(f"key {int(bad[0])} is outside [0, 253]")
    return np.concatenate(([0], keys_arr + 1)).astype(np.uint8)


def _check_cams(
    cams: np.ndarray, keys: Sequence[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    cams = np.asarray(cams)
    ids = label_ids(keys)
    if cams.ndim != 3:
        raise ValueError(f"cams must have shape (K, H, W), got {cams.shape}")
    if not np.issubdtype(cams.dtype, np.floating):
        raise ValueError(f"cams must have a floating dtype, got {cams.dtype}")
    if cams.shape[0] != ids.size - 1:
        raise ValueError(f"cams has {cams.shape[0]} planes but keys lists {ids.size - 1} classes")
    if not np.isfinite(cams).all():
        raise ValueError("cams contain NaN or infinite values")
    return cams, ids


def _best_class(cams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the first plane with the highest score (H, W) and that score in float64 (H, W).

    Scores are compared with thresholds in float64 so that float16 archives and float32 maps give
    the same labels as the threshold written in the config.
    """
    if cams.shape[0] == 0:
        return np.zeros(cams.shape[1:], dtype=np.intp), np.full(cams.shape[1:], -np.inf)
    return cams.argmax(axis=0), cams.max(axis=0).astype(np.float64)


def _check_threshold(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def cams_to_label(
    cams: np.ndarray, keys: Sequence[int] | np.ndarray, bg_threshold: float
) -> np.ndarray:
    """Label map from CAMs: argmax over a constant background plane stacked in front of the CAMs.

    A pixel is background when its best CAM score is <= ``bg_threshold`` (ties go to the earlier
    plane, so background wins a tie; among classes the first of the tied planes wins).

    Args:
        cams: (K, H, W) float scores of the present classes; K may be 0.
        keys: (K,) foreground-class indices of the planes (see :func:`label_ids`).
        bg_threshold: the constant background score.

    Returns:
        (H, W) uint8 label map, 0 = background, keys[i] + 1 for plane i.

    Raises:
        ValueError: on a shape/keys mismatch, non-float or non-finite CAMs, or a bad key.
    """
    cams, ids = _check_cams(cams, keys)
    threshold = _check_threshold(bg_threshold, "bg_threshold")
    best, score = _best_class(cams)
    plane = (best + 1) * (score > threshold)
    return ids[plane]


def sweep_confusion(
    cams: np.ndarray,
    keys: Sequence[int] | np.ndarray,
    gt: np.ndarray,
    thresholds: Sequence[float] | np.ndarray,
    num_classes: int,
    ignore_index: int = 255,
) -> np.ndarray:
    """Confusion matrices of :func:`cams_to_label` for every background threshold at once.

    Equal to ``confusion_matrix(cams_to_label(cams, keys, t), gt, num_classes, ignore_index)``
    for each t, in O(pixels + T * C^2): a pixel with best class f and score m is predicted f for
    every threshold t < m and background for t >= m, so a histogram over (number of thresholds
    below m, gt, f) and a cumulative sum along the threshold axis give all T matrices.

    Args:
        cams: (K, H, W) float scores of the present classes; K may be 0.
        keys: (K,) foreground-class indices of the planes.
        gt: (H, W) integer ground truth; ``ignore_index`` pixels are skipped, all other values
            must lie in [0, num_classes).
        thresholds: (T,) background thresholds, sorted ascending.
        num_classes: C, number of segmentation classes (background included).
        ignore_index: ground-truth value of skipped pixels.

    Returns:
        (T, C, C) int64; [j] is the confusion matrix (rows = gt, columns = prediction) at
        thresholds[j].

    Raises:
        ValueError: on unsorted/empty/non-finite thresholds, shape mismatches (both shapes
            named), a key whose label is >= num_classes, or ground truth out of range.
    """
    cams, ids = _check_cams(cams, keys)
    grid = np.asarray(thresholds, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or not np.isfinite(grid).all():
        raise ValueError(f"thresholds must be a non-empty 1-D finite sequence, got {grid!r}")
    if np.any(np.diff(grid) < 0):
        raise ValueError(f"thresholds must be sorted ascending, got {grid.tolist()}")
    gt = np.asarray(gt)
    if gt.shape != cams.shape[1:]:
        raise ValueError(f"gt shape {gt.shape} does not match cams spatial shape {cams.shape[1:]}")
    if not np.issubdtype(gt.dtype, np.integer):
        raise ValueError(f"gt must have an integer dtype, got {gt.dtype}")
    if int(ids.max()) >= num_classes:
        raise ValueError(
            f"key {int(ids.max()) - 1} maps to label {int(ids.max())}, not below {num_classes=}"
        )

    counted = gt != ignore_index
    gt_counted = gt[counted].astype(np.int64)
    bad = gt_counted[(gt_counted < 0) | (gt_counted >= num_classes)]
    if bad.size:
        raise ValueError(f"gt value {int(bad[0])} is outside [0, {num_classes}) on a counted pixel")
    best, score = _best_class(cams)
    fg_label = ids[best[counted] + 1].astype(np.int64) if cams.shape[0] else 0
    # n_below = number of thresholds strictly below the score = thresholds predicting foreground.
    n_below = np.searchsorted(grid, score[counted], side="left")

    num_t, cc = grid.size, num_classes * num_classes
    codes = n_below * cc + gt_counted * num_classes + fg_label
    hist = np.bincount(codes, minlength=(num_t + 1) * cc)
    hist = hist.reshape(num_t + 1, num_classes, num_classes)
    # Threshold j predicts foreground for pixels with n_below > j, background otherwise.
    fg_from = np.cumsum(hist[::-1], axis=0)[::-1]  # fg_from[k] = sum of hist[n] for n >= k
    bg_rows = np.cumsum(hist.sum(axis=2), axis=0)[:num_t]  # (T, C): gt counts with n_below <= j
    conf = fg_from[1:].copy()
    conf[:, :, 0] += bg_rows
    return conf.astype(np.int64, copy=False)


def threshold_grid(start: float, stop: float, step: float) -> np.ndarray:
    """Evenly spaced thresholds from ``start`` to ``stop`` inclusive, free of float drift.

    Values are rounded to 10 decimals so that e.g. ``threshold_grid(0.05, 0.60, 0.01)`` gives 56
    values whose last one is exactly 0.6 (not 0.6000000000000001).

    Args:
        start: first threshold.
        stop: last threshold (included when it lies on the grid, within rounding).
        step: positive spacing.

    Returns:
        (T,) float64 ascending thresholds.

    Raises:
        ValueError: if step <= 0, stop < start or a value is not finite.
    """
    start = _check_threshold(start, "start")
    stop = _check_threshold(stop, "stop")
    step = _check_threshold(step, "step")
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    if stop < start:
        raise ValueError(f"stop {stop} is below start {start}")
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    return np.round(start + step * np.arange(count), 10)
