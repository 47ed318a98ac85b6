"""Tests for wsss.metrics against naive loops and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.oracles import naive_confusion
from wsss.metrics import confusion_matrix, miou, per_class_iou, pixel_accuracy


def random_pair(rng, shape, num_classes, dtype, ignore_frac=0.2, ignore_index=255):
    gt = rng.integers(0, num_classes, shape).astype(dtype)
    gt[rng.random(shape) < ignore_frac] = ignore_index
    pred = rng.integers(0, num_classes, shape).astype(dtype)
    return pred, gt


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int32])
@pytest.mark.parametrize("num_classes", [1, 3, 21])
def test_confusion_matches_naive_loop(dtype, num_classes):
    rng = np.random.default_rng(num_classes)
    pred, gt = random_pair(rng, (13, 17), num_classes, dtype)
    conf = confusion_matrix(pred, gt, num_classes)
    assert conf.dtype == np.int64 and conf.shape == (num_classes, num_classes)
    np.testing.assert_array_equal(conf, naive_confusion(pred, gt, num_classes))


def test_confusion_mixed_dtypes_and_custom_ignore():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 5, (9, 11)).astype(np.uint8)  # 4 plays "ignore" here
    pred = rng.integers(0, 4, (9, 11)).astype(np.int64)
    conf = confusion_matrix(pred, gt, 4, ignore_index=4)
    np.testing.assert_array_equal(conf, naive_confusion(pred, gt, 4, ignore_index=4))


def test_prediction_on_ignored_pixel_is_not_checked():
    gt = np.array([[0, 255], [1, 1]], dtype=np.uint8)
    pred = np.array([[0, 255], [1, 0]], dtype=np.uint8)  # 255 sits on an ignored pixel
    np.testing.assert_array_equal(confusion_matrix(pred, gt, 2), [[1, 0], [1, 1]])


def test_accumulation_equals_concatenated_images():
    rng = np.random.default_rng(2)
    pairs = [random_pair(rng, (8, 10), 6, np.uint8) for _ in range(4)]
    total = sum(confusion_matrix(p, g, 6) for p, g in pairs)
    pred_all = np.concatenate([p for p, _ in pairs])
    gt_all = np.concatenate([g for _, g in pairs])
    np.testing.assert_array_equal(total, naive_confusion(pred_all, gt_all, 6))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
@pytest.mark.parametrize("bad", [3, 200])
def test_out_of_range_prediction_raises_with_value(dtype, bad):
    gt = np.zeros((4, 4), dtype=dtype)
    pred = np.zeros((4, 4), dtype=dtype)
    pred[2, 3] = bad
    with pytest.raises(ValueError, match=f"pred value {bad}"):
        confusion_matrix(pred, gt, 3)


def test_negative_prediction_raises():
    pred = np.array([[0, -1]])
    with pytest.raises(ValueError, match="pred value -1"):
        confusion_matrix(pred, np.zeros((1, 2), dtype=np.int64), 3)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_out_of_range_ground_truth_raises(dtype):
    gt = np.array([[0, 7]], dtype=dtype)
    with pytest.raises(ValueError, match="gt value 7"):
        confusion_matrix(np.zeros((1, 2), dtype=dtype), gt, 3)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        confusion_matrix(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), 2)


def test_float_labels_rejected():
    with pytest.raises(ValueError, match="integer dtype"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 2), np.uint8), 2)


def test_scores_on_hand_made_example():
    # rows = gt, cols = pred, classes 0..2
    conf = np.array([[3, 1, 0], [2, 4, 0], [0, 1, 5]])
    # class 0: TP 3, FP 2, FN 1 -> 3/6; class 1: TP 4, FP 2, FN 2 -> 4/8; class 2: 5/6
    np.testing.assert_allclose(per_class_iou(conf), [0.5, 0.5, 5 / 6])
    assert miou(conf) == pytest.approx((0.5 + 0.5 + 5 / 6) / 3)
    assert pixel_accuracy(conf) == pytest.approx(12 / 16)


def test_hand_made_example_from_label_maps():
    gt = np.array([[0, 0, 1, 255], [2, 1, 1, 0]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 2], [2, 1, 0, 0]], dtype=np.uint8)
    conf = confusion_matrix(pred, gt, 3)
    np.testing.assert_array_equal(conf, [[2, 1, 0], [1, 2, 0], [0, 0, 1]])
    np.testing.assert_allclose(per_class_iou(conf), [2 / 4, 2 / 4, 1.0])
    assert pixel_accuracy(conf) == pytest.approx(5 / 7)


def test_absent_class_is_nan_and_skipped_by_miou():
    conf = np.array([[4, 0, 1], [0, 0, 0], [1, 0, 2]])  # class 1 never in gt nor pred
    iou = per_class_iou(conf)
    assert math.isnan(iou[1])
    np.testing.assert_allclose(iou[[0, 2]], [4 / 6, 2 / 4])
    assert miou(conf) == pytest.approx((4 / 6 + 2 / 4) / 2)


def test_class_only_predicted_counts_as_zero():
    conf = np.array([[2, 1], [0, 0]])  # class 1 predicted once, never in gt -> IoU 0
    np.testing.assert_allclose(per_class_iou(conf), [2 / 3, 0.0])
    assert miou(conf) == pytest.approx(1 / 3)


def test_empty_confusion_gives_nan_without_warning():
    conf = np.zeros((3, 3), dtype=np.int64)
    with np.errstate(all="raise"):
        assert math.isnan(miou(conf))
        assert math.isnan(pixel_accuracy(conf))


def test_non_square_confusion_rejected():
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        per_class_iou(np.zeros((2, 3)))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_junk_predictions_on_ignored_pixels_match_naive_loop(dtype):
    rng = np.random.default_rng(5)
    pred, gt = random_pair(rng, (12, 14), 5, dtype, ignore_frac=0.3)
    pred[gt == 255] = rng.integers(5, 256, int((gt == 255).sum()))
    np.testing.assert_array_equal(confusion_matrix(pred, gt, 5), naive_confusion(pred, gt, 5))
