"""Segmentation metrics: dataset-level confusion matrices, per-class IoU, mIoU, pixel accuracy.

One evaluator serves CAM label maps, pseudo masks and final predictions: accumulate
:func:`confusion_matrix` over images (a plain sum), then reduce once with :func:`per_class_iou`,
:func:`miou` and :func:`pixel_accuracy`. IoU_c = TP / (TP + FP + FN), as in the VOC protocol.
"""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "per_class_iou", "miou", "pixel_accuracy"]


def _check_label_array(name: str, array: np.ndarray) -> None:
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must have an integer dtype, got {array.dtype}")


def _raise_out_of_range(name: str, values: np.ndarray, num_classes: int) -> None:
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise ValueError(
            f"{name} value {int(bad[0])} is outside [0, {num_classes}) on a counted pixel"
            + (" (map ignore in predictions explicitly)" if name == "pred" else "")
        )


def _confusion_uint8(
    pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int
) -> np.ndarray:
    # A histogram over uint16 codes holds every (gt, pred) pair, so ignore handling and range
    # checks reduce to looking at rows and columns of a small table. When every prediction is a
    # valid class (the usual case, checked by one cheap max) the code is gt * C + pred and the
    # table has 256 x C bins (small enough to stay in cache); otherwise it is gt * 256 + pred.
    width = num_classes if num_classes <= 256 and pred.max(initial=0) < num_classes else 256
    codes = gt.ravel().astype(np.uint16)
    codes *= width
    codes += pred.ravel()
    table = np.bincount(codes, minlength=256 * width).reshape(256, width)
    if 0 <= ignore_index < 256:
        table[ignore_index] = 0
    rows_used = np.flatnonzero(table.any(axis=1))
    if rows_used.size and rows_used[-1] >= num_classes:
        _raise_out_of_range("gt", rows_used, num_classes)
    cols_used = np.flatnonzero(table.any(axis=0))
    if cols_used.size and cols_used[-1] >= num_classes:
        _raise_out_of_range("pred", cols_used, num_classes)
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    size = min(num_classes, 256)
    conf[:size, :size] = table[:size, :size]
    return conf


def confusion_matrix(
    pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int = 255
) -> np.ndarray:
    """Count (ground truth, prediction) pairs over the pixels whose ground truth is not ignored.

    Matrices of several images add up to the dataset-level matrix.

    Args:
        pred: (H, W) (or any shape equal to ``gt``'s) integer predictions in [0, num_classes) on
            every counted pixel. Predictions on ignored pixels are not inspected.
        gt: integer ground truth of the same shape; ``ignore_index`` marks skipped pixels, all
            other values must lie in [0, num_classes).
        num_classes: C, the number of classes (21 for VOC, background included).
        ignore_index: ground-truth value of pixels to skip (255 for VOC).

    Returns:
        (C, C) int64 matrix; entry [i, j] counts pixels with ground truth i predicted as j.

    Raises:
        ValueError: if the shapes differ (both are named), a dtype is not integer, num_classes is
            not positive, or a counted pixel holds a value outside [0, C) (the value is named).
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred shape {pred.shape} does not match gt shape {gt.shape}")
    _check_label_array("pred", pred)
    _check_label_array("gt", gt)
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if pred.dtype == np.uint8 and gt.dtype == np.uint8:
        return _confusion_uint8(pred, gt, num_classes, ignore_index)

    counted = gt != ignore_index
    gt_counted = gt[counted].astype(np.int64)
    pred_counted = pred[counted].astype(np.int64)
    _raise_out_of_range("gt", gt_counted, num_classes)
    _raise_out_of_range("pred", pred_counted, num_classes)
    codes = gt_counted * num_classes + pred_counted
    counts = np.bincount(codes, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _check_conf(conf: np.ndarray) -> np.ndarray:
    conf = np.asarray(conf)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got shape {conf.shape}")
    return conf.astype(np.float64)


def per_class_iou(conf: np.ndarray) -> np.ndarray:
    """Intersection over union of every class from a confusion matrix.

    Args:
        conf: (C, C) confusion matrix, rows = ground truth, columns = prediction.

    Returns:
        (C,) float64, IoU_c = TP / (TP + FP + FN); NaN for a class that occurs neither in the
        ground truth nor in the prediction.

    Raises:
        ValueError: if ``conf`` is not a square 2-D matrix.
    """
    conf = _check_conf(conf)
    tp = np.diag(conf)
    union = conf.sum(axis=0) + conf.sum(axis=1) - tp
    iou = np.full(tp.shape, np.nan)
    np.divide(tp, union, out=iou, where=union > 0)
    return iou


def miou(conf: np.ndarray) -> float:
    """Mean IoU over the classes that occur (NaN entries of :func:`per_class_iou` are skipped).

    Args:
        conf: (C, C) confusion matrix, rows = ground truth, columns = prediction.

    Returns:
        The mean IoU in [0, 1]; NaN if no class occurs at all (an empty matrix).
    """
    iou = per_class_iou(conf)
    present = iou[~np.isnan(iou)]
    return float(present.mean()) if present.size else float("nan")


def pixel_accuracy(conf: np.ndarray) -> float:
    """Fraction of counted pixels predicted correctly.

    Args:
        conf: (C, C) confusion matrix, rows = ground truth, columns = prediction.

    Returns:
        trace(conf) / sum(conf); NaN if the matrix counts no pixel.
    """
    conf = _check_conf(conf)
    total = conf.sum()
    return float(np.trace(conf) / total) if total > 0 else float("nan")
