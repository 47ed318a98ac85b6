"""Tests for wsss.cam.labels against naive per-pixel loops."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracles import naive_cam_label, naive_confusion
from wsss.cam.labels import cams_to_label, label_ids, sweep_confusion, threshold_grid


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_cams_to_label_matches_naive_loop(dtype):
    rng = np.random.default_rng(0)
    cams = rng.random((3, 7, 9)).astype(dtype)
    keys = [4, 0, 19]
    got = cams_to_label(cams, keys, 0.4)
    assert got.dtype == np.uint8 and got.shape == (7, 9)
    np.testing.assert_array_equal(got, naive_cam_label(cams.astype(np.float64), keys, 0.4))
    assert set(np.unique(got)) <= {0, 5, 1, 20}


def test_ties_go_to_background_then_first_class():
    cams = np.array([[[0.5, 0.3, 0.7]], [[0.2, 0.3, 0.7]]])  # (2, 1, 3)
    # pixel 0: 0.5 ties the threshold -> bg; pixel 1: below -> bg; pixel 2: classes tie -> first
    np.testing.assert_array_equal(cams_to_label(cams, [2, 6], 0.5), [[0, 0, 3]])
    np.testing.assert_array_equal(cams_to_label(cams, [2, 6], 0.3), [[3, 0, 3]])


def test_keys_mapping_to_segmentation_ids():
    cams = np.zeros((2, 1, 2))
    cams[0, 0, 0] = 1.0
    cams[1, 0, 1] = 1.0
    np.testing.assert_array_equal(cams_to_label(cams, np.array([14, 2]), 0.5), [[15, 3]])
    np.testing.assert_array_equal(label_ids([14, 2]), [0, 15, 3])


def test_no_present_class_is_all_background():
    got = cams_to_label(np.zeros((0, 4, 5), dtype=np.float32), [], 0.2)
    np.testing.assert_array_equal(got, np.zeros((4, 5), dtype=np.uint8))


@pytest.mark.parametrize(
    ("cams", "keys", "match"),
    [
        (np.zeros((2, 3, 3)), [1], "2 planes"),
        (np.zeros((3, 3)), [], r"\(K, H, W\)"),
        (np.zeros((1, 2, 2)), [254], "key 254"),
        (np.zeros((1, 2, 2)), [-1], "key -1"),
        (np.full((1, 2, 2), np.nan), [0], "NaN"),
        (np.zeros((1, 2, 2), dtype=np.int64), [0], "floating"),
    ],
)
def test_cams_to_label_rejects_bad_input(cams, keys, match):
    with pytest.raises(ValueError, match=match):
        cams_to_label(cams, keys, 0.1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_present", [0, 1, 3])
def test_sweep_confusion_equals_loop_over_thresholds(num_present, dtype):
    rng = np.random.default_rng(num_present)
    h, w, num_classes = 11, 13, 8
    keys = rng.choice(num_classes - 1, size=num_present, replace=False)
    # Scores on a 0.05 grid: in float64 many pixels sit exactly on a threshold (tie -> bg).
    cams = (np.round(rng.random((num_present, h, w)) * 20) / 20).astype(dtype)
    gt = rng.integers(0, num_classes, (h, w)).astype(np.uint8)
    gt[rng.random((h, w)) < 0.2] = 255
    thresholds = threshold_grid(0.05, 0.60, 0.05)
    got = sweep_confusion(cams, keys, gt, thresholds, num_classes)
    assert got.shape == (thresholds.size, num_classes, num_classes) and got.dtype == np.int64
    for j, t in enumerate(thresholds):
        expected = naive_confusion(
            naive_cam_label(cams.astype(np.float64), keys, t), gt, num_classes
        )
        np.testing.assert_array_equal(got[j], expected, err_msg=f"threshold {t}")


def test_sweep_confusion_extreme_thresholds():
    cams = np.array([[[0.2, 0.9]]])
    gt = np.array([[1, 0]], dtype=np.int64)
    got = sweep_confusion(cams, [0], gt, [-1.0, 0.5, 2.0], 2)
    np.testing.assert_array_equal(got[0], [[0, 1], [0, 1]])  # everything foreground
    np.testing.assert_array_equal(got[1], [[0, 1], [1, 0]])
    np.testing.assert_array_equal(got[2], [[1, 0], [1, 0]])  # everything background


@pytest.mark.parametrize(
    ("thresholds", "gt", "keys", "match"),
    [
        ([0.3, 0.2], np.zeros((2, 2), np.uint8), [0], "ascending"),
        ([], np.zeros((2, 2), np.uint8), [0], "non-empty"),
        ([0.1], np.zeros((2, 3), np.uint8), [0], r"\(2, 3\).*\(2, 2\)"),
        ([0.1], np.full((2, 2), 9, np.uint8), [0], "gt value 9"),
        ([0.1], np.zeros((2, 2), np.uint8), [5], "key 5"),
    ],
)
def test_sweep_confusion_rejects_bad_input(thresholds, gt, keys, match):
    with pytest.raises(ValueError, match=match):
        sweep_confusion(np.zeros((1, 2, 2)), keys, gt, thresholds, 4)


def test_threshold_grid_is_inclusive_and_drift_free():
    grid = threshold_grid(0.05, 0.60, 0.01)
    assert grid.size == 56
    assert grid[0] == 0.05 and grid[-1] == 0.6
    np.testing.assert_array_equal(grid, [i / 100 for i in range(5, 61)])
    np.testing.assert_array_equal(threshold_grid(0.2, 0.2, 0.1), [0.2])
    np.testing.assert_array_equal(threshold_grid(0.0, 0.25, 0.1), [0.0, 0.1, 0.2])


@pytest.mark.parametrize(("start", "stop", "step"), [(0.1, 0.5, 0.0), (0.5, 0.1, 0.1)])
def test_threshold_grid_rejects_bad_ranges(start, stop, step):
    with pytest.raises(ValueError):
        threshold_grid(start, stop, step)
