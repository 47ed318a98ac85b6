"""Tests for wsss.refine.pseudo_labels on synthetic two-object scenes."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tests.conftest import CRF_LABEL_IRN as IRN
from tests.conftest import CRF_SOFTMAX_PSA as PSA
from tests.conftest import needs_crf
from tests.oracles import naive_cam_label
from wsss.refine.pseudo_labels import crf_pseudo_label

pytestmark = needs_crf

KEYS = [6, 14]  # classifier indices -> segmentation ids 7 and 15


def two_disc_scene(size=48, seed=0):
    """Image with a red and a green disc on blue, the true label map, and noisy CAMs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    disc_a = (yy - 14) ** 2 + (xx - 14) ** 2 < 10**2
    disc_b = (yy - 32) ** 2 + (xx - 32) ** 2 < 11**2
    colours = np.full((size, size, 3), [40, 70, 180], dtype=float)
    colours[disc_a] = [210, 50, 40]
    colours[disc_b] = [60, 200, 60]
    image = np.clip(colours + rng.normal(0, 6, colours.shape), 0, 255).astype(np.uint8)
    truth = np.zeros((size, size), np.uint8)
    truth[disc_a], truth[disc_b] = KEYS[0] + 1, KEYS[1] + 1
    cams = np.stack([disc_a, disc_b]).astype(float) * 0.6 + rng.normal(0, 0.3, (2, size, size))
    return image, truth, np.clip(cams, 0.0, 1.0)


@pytest.mark.parametrize("params", [IRN, PSA], ids=["labels", "softmax"])
def test_crf_pseudo_label_beats_thresholded_cams(params):
    image, truth, cams = two_disc_scene()
    label = crf_pseudo_label(image, cams, KEYS, bg_threshold=0.3, crf_params=params)
    assert label.dtype == np.uint8 and label.shape == truth.shape
    assert set(np.unique(label)) <= {0, 7, 15}
    accuracy_before = (naive_cam_label(cams, KEYS, 0.3) == truth).mean()
    accuracy_after = (label == truth).mean()
    assert accuracy_before < 0.8
    assert accuracy_after > 0.97


@pytest.mark.parametrize("params", [IRN, PSA], ids=["labels", "softmax"])
def test_without_iterations_equals_threshold_label(params):
    # No mean-field step: the CRF argmax is the argmax of [bg; cams] (cams lie in [1e-5, 1]).
    image, _, cams = two_disc_scene(size=20, seed=1)
    cams = np.clip(cams, 1e-4, 1.0)
    no_iter = dict(copy.deepcopy(params), iterations=0)
    label = crf_pseudo_label(image, cams, KEYS, bg_threshold=0.25, crf_params=no_iter)
    np.testing.assert_array_equal(label, naive_cam_label(cams, KEYS, 0.25))


def test_ignore_disagreement_marks_changed_pixels():
    image, _, cams = two_disc_scene(seed=2)
    plain = crf_pseudo_label(image, cams, KEYS, bg_threshold=0.3, crf_params=IRN)
    ruled = crf_pseudo_label(
        image, cams, KEYS, bg_threshold=0.3, crf_params=IRN, ignore_disagreement=True
    )
    before = naive_cam_label(cams, KEYS, 0.3)
    expected = np.where(plain == before, plain, 255)
    np.testing.assert_array_equal(ruled, expected)
    assert 0 < (ruled == 255).sum() < ruled.size // 2


def test_custom_ignore_index():
    image, _, cams = two_disc_scene(size=24, seed=3)
    ruled = crf_pseudo_label(
        image,
        cams,
        KEYS,
        bg_threshold=0.3,
        crf_params=IRN,
        ignore_disagreement=True,
        ignore_index=254,
    )
    assert 255 not in ruled and (ruled == 254).any()


@pytest.mark.parametrize("ignore_disagreement", [False, True])
def test_no_present_class_is_all_background(ignore_disagreement):
    image = np.random.default_rng(4).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    label = crf_pseudo_label(
        image,
        np.zeros((0, 9, 11), np.float32),
        [],
        bg_threshold=0.2,
        crf_params=PSA,
        ignore_disagreement=ignore_disagreement,
    )
    np.testing.assert_array_equal(label, np.zeros((9, 11), np.uint8))


def test_bad_inputs_raise():
    image, _, cams = two_disc_scene(size=16)
    with pytest.raises(ValueError, match="ignore_index 7"):
        crf_pseudo_label(
            image,
            cams,
            KEYS,
            bg_threshold=0.3,
            crf_params=IRN,
            ignore_disagreement=True,
            ignore_index=7,
        )
    with pytest.raises(ValueError, match=r"\(16, 15, 3\)"):
        crf_pseudo_label(image[:, :15], cams, KEYS, bg_threshold=0.3, crf_params=IRN)
    with pytest.raises(ValueError, match="1 classes"):
        crf_pseudo_label(image, cams, KEYS[:1], bg_threshold=0.3, crf_params=IRN)


def _release_crf_inference_label(image, labels, n_labels, t=10, gt_prob=0.7):
    """SMAF's (IRN's) crf_inference_label called as SMAF's pseudo-mask step does, with
    n_labels = every class of the dataset: pydensecrf's own unary_from_labels."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_labels

    h, w = image.shape[:2]
    d = dcrf.DenseCRF2D(w, h, n_labels)
    d.setUnaryEnergy(unary_from_labels(labels, n_labels, gt_prob=gt_prob, zero_unsure=False))
    d.addPairwiseGaussian(sxy=3, compat=3)
    d.addPairwiseBilateral(sxy=50, srgb=5, rgbim=np.ascontiguousarray(image), compat=10)
    return np.argmax(np.array(d.inference(t)).reshape((n_labels, h, w)), axis=0)


@pytest.mark.parametrize("seed", [0, 3])
def test_crf_over_all_labels_matches_smafs_release(seed):
    """SMAF §2.3 step 4: argmax of [bg 0.2-like plane; present CAMs] in segmentation ids, then
    the label CRF over all 21 VOC labels (not the image's K + 1)."""
    image, _, cams = two_disc_scene(seed=seed)
    start = naive_cam_label(cams, KEYS, 0.3)
    want = _release_crf_inference_label(image, start, 21)
    got = crf_pseudo_label(image, cams, KEYS, bg_threshold=0.3, crf_params=IRN, num_labels=21)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    image_only = crf_pseudo_label(image, cams, KEYS, bg_threshold=0.3, crf_params=IRN)
    ids = np.array([0, 7, 15])  # IRN's convention: the CRF over the image's K + 1 labels
    irn_convention = ids[_release_crf_inference_label(image, np.searchsorted(ids, start), 3)]
    np.testing.assert_array_equal(image_only, irn_convention)


def test_crf_over_all_labels_needs_the_label_unary():
    image, _, cams = two_disc_scene(size=12)
    with pytest.raises(ValueError, match="needs the label unary"):
        crf_pseudo_label(image, cams, KEYS, bg_threshold=0.3, crf_params=PSA, num_labels=21)
    with pytest.raises(ValueError, match="num_labels 10"):
        crf_pseudo_label(image, cams, KEYS, bg_threshold=0.3, crf_params=IRN, num_labels=10)
