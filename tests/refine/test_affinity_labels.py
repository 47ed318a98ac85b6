"""Tests for wsss.refine.affinity_labels: IRN / PSA confident regions and pair labels."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tests.conftest import CRF_LABEL_IRN as IRN
from tests.conftest import CRF_SOFTMAX_PSA as PSA
from tests.conftest import needs_crf
from wsss.refine.affinity_labels import (
    combine_irn_labels,
    combine_psa_labels,
    irn_confident_labels,
    pair_labels,
    psa_background,
    psa_confident_labels,
)
from wsss.refine.random_walk import pair_offsets

NO_ITER_IRN = dict(copy.deepcopy(IRN), iterations=0)
NO_ITER_PSA = dict(copy.deepcopy(PSA), iterations=0)
U = 255


def random_image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_combine_irn_labels_hand_map():
    fg = np.array([[0, 0, 3, 3], [0, 7, 0, 128]], np.uint8)
    bg = np.array([[0, 3, 3, 0], [7, 7, 0, 128]], np.uint8)
    # (fg, bg): (0,0) bg, (0,c) unsure, (c,*) class c — also for 128 + 128 (no uint8 wrap-around)
    expected = np.array([[0, U, 3, 3], [U, 7, 0, 128]], np.uint8)
    out = combine_irn_labels(fg, bg)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(
        combine_irn_labels(fg, bg, ignore_index=200), np.where(expected == U, 200, expected)
    )


def test_combine_psa_labels_hand_map():
    low = np.array([[0, 0, 4, 4], [9, 0, 9, 4]], np.uint8)  # la
    high = np.array([[0, 4, 4, 0], [9, 9, 0, 4]], np.uint8)  # ha
    # label = la; la == 0 -> unsure; ha == 0 -> background (overrides la)
    expected = np.array([[0, U, 4, 0], [9, U, 0, 4]], np.uint8)
    np.testing.assert_array_equal(combine_psa_labels(low, high), expected)


def test_combine_rejects_bad_input():
    with pytest.raises(ValueError, match="fg_label"):
        combine_irn_labels(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="ignore_index"):
        combine_psa_labels(np.zeros((2, 2)), np.zeros((2, 2)), ignore_index=0)


# Two classes, keys [2, 9] -> ids 3 and 10.
IRN_CAMS = np.array(
    [
        [[0.00, 0.04, 0.10, 0.50], [0.20, 0.90, 0.02, 0.06]],
        [[0.01, 0.00, 0.20, 0.40], [0.35, 0.10, 0.03, 0.01]],
    ]
)


@needs_crf
@pytest.mark.parametrize(
    "fg_threshold, expected",
    [
        # best score per pixel: .01 .04 .20(b) .50(a) / .35(b) .90(a) .03 .06(a)
        (0.30, [[0, 0, U, 3], [10, 3, 0, U]]),
        (0.40, [[0, 0, U, 3], [U, 3, 0, U]]),
    ],
)
def test_irn_combination_without_crf_steps(fg_threshold, expected):
    # With 0 mean-field iterations the label-unary CRF returns its starting labels, i.e. the
    # thresholded argmax, so the result is the hand-computed combination.
    label = irn_confident_labels(
        random_image(2, 4),
        IRN_CAMS,
        [2, 9],
        fg_threshold=fg_threshold,
        bg_threshold=0.05,
        crf_params=NO_ITER_IRN,
    )
    assert label.dtype == np.uint8
    np.testing.assert_array_equal(label, np.array(expected, np.uint8))


# Two classes, keys [0, 5] -> ids 1 and 6.
PSA_CAMS = np.array(
    [
        [[0.0, 0.05, 0.10, 0.20], [0.30, 0.9, 0.3, 0.00]],
        [[0.0, 0.00, 0.02, 0.10], [0.10, 0.2, 0.6, 0.25]],
    ]
)


@needs_crf
@pytest.mark.parametrize(
    "alpha_high, expected",
    [
        # m = max cam; la background iff (1-m)^4 > m, ha background iff (1-m)^a_high > m:
        # m = .05: .81/.19 bg/bg; .10: .66/.034 bg/fg; .20: .41/8e-4 bg/fg; .30: .24 fg;
        # .90 fg; .60: .026 fg (class 6); .25: .32/1e-4 bg/fg
        (32.0, [[0, 0, U, U], [1, 1, 6, U]]),
        # a_high = 8: m = .10: .43 bg; m = .20: .17 fg; m = .25: .10 fg
        (8.0, [[0, 0, 0, U], [1, 1, 6, U]]),
    ],
)
def test_psa_combination_without_crf_steps(alpha_high, expected):
    # With 0 iterations the softmax-unary posterior is the normalised clipped scores.
    label = psa_confident_labels(
        random_image(2, 4),
        PSA_CAMS,
        [0, 5],
        alpha_low=4.0,
        alpha_high=alpha_high,
        crf_params=NO_ITER_PSA,
    )
    np.testing.assert_array_equal(label, np.array(expected, np.uint8))


def test_psa_background_formula():
    cams = np.array([[[0.2, 1.0]], [[0.5, 0.1]]])
    np.testing.assert_allclose(psa_background(cams, 3.0), [[0.5**3, 0.0]])
    np.testing.assert_array_equal(psa_background(np.zeros((0, 2, 3)), 4.0), np.ones((2, 3)))
    with pytest.raises(ValueError, match="alpha"):
        psa_background(cams, 0.0)


def ring_scene(size=48, seed=0):
    """Red disc, green ring around it, blue background (mild noise); masks of disc and ring."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    d2 = (yy - 24) ** 2 + (xx - 24) ** 2
    disc, ring = d2 < 9**2, (d2 >= 9**2) & (d2 < 15**2)
    colours = np.full((size, size, 3), [40.0, 70.0, 180.0])
    colours[disc], colours[ring] = [210, 50, 40], [60, 200, 60]
    image = np.clip(colours + rng.normal(0, 4, colours.shape), 0, 255).astype(np.uint8)
    return image, disc, ring


@needs_crf
@pytest.mark.parametrize(
    "fn, params, ring_cam, noise",
    [(irn_confident_labels, IRN, 0.12, 0.04), (psa_confident_labels, PSA, 0.15, 0.06)],
    ids=["irn", "psa"],
)
def test_crf_cleans_noisy_confident_regions(fn, params, ring_cam, noise):
    # A strong CAM on the disc and a weak one on the ring (foreground only for the permissive
    # threshold / high alpha): disc = class, ring = unsure, rest = background. Noise flips many
    # pixels of the un-refined combination; the CRF, whose regions follow the colour edges,
    # restores the expected map.
    image, disc, ring = ring_scene()
    expected = np.where(disc, 4, np.where(ring, U, 0))
    clean = np.where(disc, 0.9, np.where(ring, ring_cam, 0.0))[None]
    np.testing.assert_array_equal(fn(image, clean, [3], crf_params=params), expected)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, noise, clean.shape), 0, 1)
    no_iter = dict(copy.deepcopy(params), iterations=0)
    assert (fn(image, noisy, [3], crf_params=no_iter) == expected).mean() < 0.95
    assert (fn(image, noisy, [3], crf_params=params) == expected).mean() > 0.995


@needs_crf
@pytest.mark.parametrize("fn, params", [(irn_confident_labels, IRN), (psa_confident_labels, PSA)])
def test_no_foreground_class_gives_background(fn, params):
    label = fn(random_image(5, 6), np.zeros((0, 5, 6)), [], crf_params=params)
    np.testing.assert_array_equal(label, np.zeros((5, 6), np.uint8))


def test_confident_labels_validate():
    image, cams = random_image(2, 4), PSA_CAMS
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        psa_confident_labels(image, cams * 2, [0, 5], crf_params=PSA)
    with pytest.raises(ValueError, match="shape"):
        psa_confident_labels(image, cams, [0], crf_params=PSA)
    with pytest.raises(ValueError, match="ignore_index"):
        irn_confident_labels(image, cams, [0, 4], crf_params=IRN, ignore_index=5)  # id 5
    with pytest.raises(ValueError, match="ignore_index"):
        psa_confident_labels(image, cams, [0, 5], crf_params=PSA, ignore_index=1)  # id 1


def naive_pair_labels(labels, radius, ignore=255):
    """Reference: loop over images, offsets and pixels."""
    offsets = pair_offsets(radius)
    b, h, w = labels.shape
    out = np.zeros((3, b, len(offsets), h, w), bool)
    for n in range(b):
        for p, (dy, dx) in enumerate(offsets):
            for y in range(h):
                for x in range(w):
                    y2, x2 = y + dy, x + dx
                    if not (0 <= y2 < h and 0 <= x2 < w):
                        continue
                    a, c = labels[n, y, x], labels[n, y2, x2]
                    if a == ignore or c == ignore:
                        continue
                    out[0, n, p, y, x] = a == c == 0
                    out[1, n, p, y, x] = a == c and a > 0
                    out[2, n, p, y, x] = a != c
    return out


@pytest.mark.parametrize("radius", [2, 3, 5])
def test_pair_labels_match_naive_loop(radius):
    rng = np.random.default_rng(radius)
    labels = rng.choice(np.array([0, 0, 3, 7, 255], np.uint8), size=(2, 7, 9))
    masks = pair_labels(torch.from_numpy(labels), radius)
    reference = naive_pair_labels(labels, radius)
    num_pairs = len(pair_offsets(radius))
    for mask, ref in zip(masks, reference, strict=True):
        assert mask.dtype == torch.bool and mask.shape == (2, num_pairs, 7, 9)
        np.testing.assert_array_equal(mask.numpy(), ref)
    # unbatched input (numpy) gives the first image's masks
    single = pair_labels(labels[0], radius)
    for mask, batched in zip(single, masks, strict=True):
        assert torch.equal(mask, batched[0])
    # every valid pair is in exactly one set
    total = masks[0].int() + masks[1].int() + masks[2].int()
    assert total.max() <= 1


def test_pair_labels_hand_case():
    # 1×2 map, radius 2: D = [(0, 1), (1, -1), (1, 0), (1, 1)]; only ((0,0),(0,1)) is in the map
    bg_pos, fg_pos, neg = pair_labels(torch.tensor([[0, 1]]), 2)
    assert not bg_pos.any() and not fg_pos.any()
    expected = torch.zeros(4, 1, 2, dtype=torch.bool)
    expected[0, 0, 0] = True
    assert torch.equal(neg, expected)
    bg_pos, fg_pos, neg = pair_labels(torch.tensor([[5, 5], [255, 0]]), 2, ignore_index=255)
    assert fg_pos[0, 0, 0] and fg_pos.sum() == 1
    # negatives ((0,0),(1,1)) = offset (1, 1) at (0,0) and ((0,1),(1,1)) = offset (1, 0) at (0,1);
    # ((0,1),(1,0)) touches the ignored pixel
    assert neg[3, 0, 0] and neg[2, 0, 1] and neg.sum() == 2
    assert not bg_pos.any()


def test_pair_labels_validate():
    with pytest.raises(ValueError, match="integer"):
        pair_labels(torch.zeros(3, 3), 2)
    with pytest.raises(ValueError, match="shape"):
        pair_labels(torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="radius"):
        pair_labels(torch.zeros(3, 3, dtype=torch.long), 1)
