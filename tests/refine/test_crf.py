"""Tests for wsss.refine.crf: unary formulas, refinement of a noisy map, parameter validation."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest

from tests.conftest import CRF_LABEL_IRN as IRN
from tests.conftest import CRF_SOFTMAX_PSA as PSA
from tests.conftest import needs_crf
from wsss.refine.crf import (
    BilateralKernel,
    CRFParams,
    GaussianKernel,
    dense_crf,
    label_unary,
    softmax_unary,
)


def with_changes(base, **changes):
    params = copy.deepcopy(base)
    params.update(changes)
    return params


def disc_scene(seed=0, size=64):
    """A red disc on a blue background (mild pixel noise) and its true mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = (yy - 30) ** 2 + (xx - 34) ** 2 < 16**2
    colours = np.where(mask[..., None], [200, 60, 40], [40, 70, 180]).astype(float)
    image = np.clip(colours + rng.normal(0, 8, colours.shape), 0, 255).astype(np.uint8)
    return image, mask


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


@needs_crf
@pytest.mark.parametrize("params", [PSA, IRN], ids=["softmax", "labels"])
@pytest.mark.parametrize("corruption", ["noise", "shifted"])
def test_crf_cleans_up_a_corrupted_map(params, corruption):
    image, mask = disc_scene()
    rng = np.random.default_rng(1)
    if corruption == "noise":
        fg = 0.5 + 0.15 * (2 * mask - 1) + rng.normal(0, 0.3, mask.shape)
    else:  # a smaller disc, shifted off the object
        yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
        fg = 0.3 + 0.4 * ((yy - 33) ** 2 + (xx - 38) ** 2 < 12**2) + rng.normal(0, 0.1, mask.shape)
    fg = np.clip(fg, 0.01, 0.99)
    probs = np.stack([1 - fg, fg])
    before = iou(probs.argmax(0) == 1, mask)
    posterior = dense_crf(image, probs, params)
    assert posterior.shape == probs.shape and posterior.dtype == np.float32
    np.testing.assert_allclose(posterior.sum(0), 1.0, atol=1e-5)
    after = iou(posterior.argmax(0) == 1, mask)
    assert before < 0.6
    assert after > 0.9


def test_softmax_unary_formula():
    probs = np.array([[[0.0, 0.5]], [[1.7, 1e-7]], [[-0.2, 0.25]]])  # (3, 1, 2), not normalised
    expected = -np.log([[1e-5, 0.5], [1.0, 1e-5], [1e-5, 0.25]])
    got = softmax_unary(probs)
    assert got.dtype == np.float32 and got.shape == (3, 2) and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_label_unary_formula():
    labels = np.array([[0, 2], [1, 0]])
    got = label_unary(labels, 3, 0.7)
    assert got.dtype == np.float32 and got.shape == (3, 4)
    for n, lab in enumerate(labels.ravel()):
        for k in range(3):
            p = 0.7 if k == lab else 0.3 / 2
            assert got[k, n] == pytest.approx(-np.log(p), rel=1e-6)


@needs_crf
@pytest.mark.parametrize(
    "changes",
    [
        {"iterations": 0},
        {"gaussian": {"sxy": 3, "compat": 0}, "bilateral": {"sxy": 80, "srgb": 13, "compat": 0}},
    ],
    ids=["no-iterations", "zero-compat"],
)
def test_softmax_posterior_without_pairwise_is_normalised_clipped_probs(changes):
    rng = np.random.default_rng(2)
    probs = rng.uniform(-0.3, 1.6, (4, 6, 7))  # negatives and values > 1: clipped, not renormalised
    image = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    got = dense_crf(image, probs, with_changes(PSA, **changes))
    clipped = np.clip(probs, 1e-5, 1.0)
    np.testing.assert_allclose(got, clipped / clipped.sum(0), atol=1e-6)


@needs_crf
def test_labels_posterior_without_iterations_is_label_confidence():
    rng = np.random.default_rng(3)
    probs = rng.random((3, 5, 4))
    image = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    got = dense_crf(image, probs, with_changes(IRN, iterations=0, gt_prob=0.6))
    for k in range(3):
        for y in range(5):
            for x in range(4):
                best = int(np.argmax(probs[:, y, x]))
                assert got[k, y, x] == pytest.approx(0.6 if k == best else 0.2, abs=1e-6)


@needs_crf
def test_pairwise_terms_change_the_posterior():
    image, _ = disc_scene(size=24)
    probs = np.random.default_rng(4).uniform(0.2, 0.8, (2, 24, 24))
    unary_only = dense_crf(image, probs, with_changes(PSA, iterations=0))
    refined = dense_crf(image, probs, PSA)
    assert np.abs(refined - unary_only).max() > 0.1


@needs_crf
def test_non_contiguous_image_view_is_accepted():
    image, _ = disc_scene(size=20)
    probs = np.random.default_rng(5).random((2, 20, 20))
    flipped = image[:, ::-1]
    got = dense_crf(flipped, probs, PSA)
    np.testing.assert_allclose(got, dense_crf(flipped.copy(), probs, PSA), atol=1e-6)


def test_single_label_returns_ones():
    got = dense_crf(np.zeros((3, 4, 3), np.uint8), np.full((1, 3, 4), 0.2), IRN)
    np.testing.assert_array_equal(got, np.ones((1, 3, 4), np.float32))


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((5, 4, 3), np.uint8), r"\(5, 4, 3\).*\(2, 4, 5\)"),
        (np.zeros((4, 5), np.uint8), r"\(4, 5\)"),
        (np.zeros((4, 5, 4), np.uint8), r"\(4, 5, 4\)"),
        (np.zeros((4, 5, 3), np.float32), "uint8"),
    ],
)
def test_bad_image_rejected(image, match):
    with pytest.raises(ValueError, match=match):
        dense_crf(image, np.full((2, 4, 5), 0.5), PSA)


def test_missing_pydensecrf_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(ImportError, match="pip install pydensecrf2"):
        dense_crf(np.zeros((4, 5, 3), np.uint8), np.full((2, 4, 5), 0.5), PSA)


def test_from_mapping_builds_the_dataclass():
    expected = CRFParams(
        unary="labels",
        gaussian=GaussianKernel(sxy=3, compat=3),
        bilateral=BilateralKernel(sxy=50, srgb=5, compat=10),
        iterations=10,
        gt_prob=0.7,
    )
    assert CRFParams.from_mapping(IRN) == expected
    assert CRFParams.from_mapping(PSA).gt_prob is None


@pytest.mark.parametrize(
    ("params", "key"),
    [
        (with_changes(PSA, alpha=4), "alpha"),
        (with_changes(PSA, gaussian={"sxy": 3, "compat": 3, "srgb": 1}), "gaussian.srgb"),
        ({k: v for k, v in PSA.items() if k != "iterations"}, "iterations"),
        ({k: v for k, v in PSA.items() if k != "bilateral"}, "bilateral"),
        (with_changes(PSA, bilateral={"sxy": 80, "compat": 10}), "bilateral.srgb"),
        (with_changes(PSA, gaussian=3), "gaussian"),
        (with_changes(PSA, unary="probs"), "unary"),
        (with_changes(PSA, iterations=-1), "iterations"),
        (with_changes(PSA, iterations=2.5), "iterations"),
        (with_changes(PSA, iterations=True), "iterations"),
        (with_changes(PSA, gt_prob=0.7), "gt_prob"),
        ({k: v for k, v in IRN.items() if k != "gt_prob"}, "gt_prob"),
        (with_changes(IRN, gt_prob=1.0), "gt_prob"),
        (with_changes(IRN, gt_prob=0), "gt_prob"),
        (with_changes(PSA, gaussian={"sxy": 0, "compat": 3}), "gaussian.sxy"),
        (with_changes(PSA, gaussian={"sxy": 3, "compat": -1}), "gaussian.compat"),
        (with_changes(PSA, bilateral={"sxy": 80, "srgb": "13", "compat": 10}), "bilateral.srgb"),
        (
            with_changes(PSA, bilateral={"sxy": 80, "srgb": 13, "compat": float("nan")}),
            "bilateral.compat",
        ),
    ],
)
def test_bad_params_raise_naming_the_key(params, key):
    with pytest.raises(ValueError, match=f"'{key}'"):
        CRFParams.from_mapping(params)
    with pytest.raises(ValueError, match=f"'{key}'"):  # dense_crf validates before any work
        dense_crf(np.zeros((2, 2, 3), np.uint8), np.full((1, 2, 2), 0.5), params)
