"""Tests for multi-scale/flip CAM inference and IRN max-normalisation against naive references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.oracles import naive_release_cams
from wsss.cam.inference import (
    fuse_cams,
    multiscale_cams,
    normalize_present,
    release_multiscale_cams,
    size_batches,
)
from wsss.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize_image


class TinyCamModel(nn.Module):
    """Deterministic stride-2 "CAM model" that is NOT flip-equivariant (asymmetric 1×3 kernel)."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.weight = torch.randn(num_classes, 3, 1, 3, generator=g)
        self.batch_sizes: list[int] = []

    def cams(self, x: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(x.shape[0])
        return F.relu(F.conv2d(F.avg_pool2d(x, 2, ceil_mode=True), self.weight, padding=(0, 1)))


def _naive_multiscale(model, image, scales, flip, stride=1):
    """One image at a time, explicit flips, explicit sums; upsampled to the stride-multiple
    canvas (16·ceil(H/16) in IRN) and cropped."""
    h, w = image.shape[-2:]
    canvas = (-(-h // stride) * stride, -(-w // stride) * stride)
    total = torch.zeros(model.weight.shape[0], h, w)
    for s in scales:
        size = (int(np.round(h * s)), int(np.round(w * s)))  # IRN pil_rescale: half to even
        img = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        passes = [model.cams(img)[0]]
        if flip:
            passes.append(torch.flip(model.cams(torch.flip(img, dims=[3]))[0], dims=[2]))
        for cam in passes:
            up = F.interpolate(cam[None], size=canvas, mode="bilinear", align_corners=False)[0]
            total += up[:, :h, :w]
    return total


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("flip", [True, False])
def test_multiscale_cams_matches_naive_loop(flip, stride):
    torch.manual_seed(1)
    image = torch.randn(3, 13, 18)
    image[:, :, :6] += 2.0  # strongly left/right asymmetric
    model = TinyCamModel()
    scales = (1.0, 0.5, 1.5, 0.75)
    got = multiscale_cams(model, image, scales=scales, flip=flip, stride=stride)
    assert model.batch_sizes == [2 if flip else 1] * len(scales)
    ref = _naive_multiscale(model, image, scales, flip, stride)
    assert got.dtype == torch.float32 and got.shape == (3, 13, 18)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_flip_is_flipped_back():
    torch.manual_seed(2)
    image = torch.randn(3, 8, 10)
    image[:, :, :3] += 3.0
    model = TinyCamModel()
    both = multiscale_cams(model, image, scales=[1.0], flip=True)
    plain = multiscale_cams(model, image, scales=[1.0], flip=False)
    mirrored = multiscale_cams(model, image.flip(-1), scales=[1.0], flip=False)
    # flip pass of the image == un-flipped pass of the mirrored image, flipped back
    torch.testing.assert_close(both, plain + mirrored.flip(-1), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(both, plain + mirrored, atol=1e-3)  # forgetting to flip back fails


def test_multiscale_rejects_bad_input():
    model = TinyCamModel()
    with pytest.raises(ValueError, match="scales"):
        multiscale_cams(model, torch.zeros(3, 4, 4), scales=[], flip=False)
    with pytest.raises(ValueError, match="scales"):
        multiscale_cams(model, torch.zeros(3, 4, 4), scales=[1.0, -0.5], flip=False)
    with pytest.raises(ValueError, match="shape"):
        multiscale_cams(model, torch.zeros(1, 1, 3, 4, 4), scales=[1.0], flip=False)
    with pytest.raises(ValueError, match="shape"):
        multiscale_cams(model, torch.zeros(2, 4, 4), scales=[1.0], flip=False)


@pytest.mark.parametrize("flip", [True, False])
def test_a_batch_of_one_size_takes_one_pass_per_scale_and_equals_single_images(flip):
    torch.manual_seed(3)
    images = torch.randn(3, 3, 11, 14)
    images[:, :, :, :5] += torch.tensor([2.0, -1.0, 0.5])[:, None, None, None]
    model = TinyCamModel()
    scales = (1.0, 0.5, 1.5)
    got = multiscale_cams(model, images, scales=scales, flip=flip, stride=2)
    assert model.batch_sizes == [6 if flip else 3] * len(scales)  # images and mirrors together
    assert got.shape == (3, 3, 11, 14)
    for image, maps in zip(images, got, strict=True):
        torch.testing.assert_close(
            maps, _naive_multiscale(model, image, scales, flip, 2), rtol=1e-5, atol=1e-5
        )


def test_size_batches_groups_equal_sizes_in_order():
    sizes = {"e": (4, 5), "a": (4, 5), "c": (3, 9), "b": (4, 5), "d": (4, 5), "f": (2, 2)}
    assert size_batches(sizes, 3) == [["f"], ["c"], ["a", "b", "d"], ["e"]]
    assert size_batches(sizes, 1) == [["f"], ["c"], ["a"], ["b"], ["d"], ["e"]]
    with pytest.raises(ValueError, match="images per batch"):
        size_batches(sizes, 0)


def test_normalize_present():
    rng = np.random.default_rng(0)
    cams = rng.uniform(0, 5, size=(4, 6, 7)).astype(np.float32)
    labels = np.array([0, 1, 0, 1])
    keys, norm = normalize_present(torch.from_numpy(cams), torch.from_numpy(labels))
    assert keys.dtype == np.int64 and keys.tolist() == [1, 3]
    assert norm.dtype == np.float32 and norm.shape == (2, 6, 7)
    for i, k in enumerate((1, 3)):
        np.testing.assert_allclose(norm[i], cams[k] / (cams[k].max() + 1e-5), rtol=1e-6)
        assert abs(norm[i].max() - 1.0) < 1e-5
    keys0, norm0 = normalize_present(cams, np.zeros(4))
    assert keys0.shape == (0,) and keys0.dtype == np.int64
    assert norm0.shape == (0, 6, 7) and norm0.dtype == np.float32
    keys_z, norm_z = normalize_present(np.zeros((2, 3, 3)), np.array([1, 0]))
    assert keys_z.tolist() == [0] and np.all(norm_z == 0)  # all-zero map stays 0, no NaN
    with pytest.raises(ValueError, match="labels"):
        normalize_present(cams, np.ones(3))


def test_normalize_present_minmax_by_hand():
    cams = np.array([[[-1.0, 1.0], [3.0, 5.0]], [[2.0, 2.0], [4.0, 6.0]]], dtype=np.float32)
    keys, norm = normalize_present(cams, np.array([1, 1]), mode="minmax")
    eps = 1e-5
    # class 0: clipped [0, 1, 3, 5], min 0 → (x − ε)/(5 + ε); the minimum pixel ends at 0
    expected0 = [
        [0.0, (1 - eps) / (5 + eps)],
        [(3 - eps) / (5 + eps), (5 - eps) / (5 + eps)],
    ]
    # class 1: min 2 → both 2s end at 0 (released: −(2 + ε)/(4 + ε); same argmax vs a bg ≥ 0)
    expected1 = [[0.0, 0.0], [(2 - eps) / (4 + eps), (4 - eps) / (4 + eps)]]
    np.testing.assert_allclose(norm, np.array([expected0, expected1]), rtol=1e-6)
    _, half = normalize_present(cams, np.array([1, 1]), mode="minmax_half")
    np.testing.assert_allclose(half, norm / 2, rtol=1e-6)  # CPN's halved maps
    with pytest.raises(ValueError, match="normalization"):
        normalize_present(cams, np.array([1, 1]), mode="sum")


def test_normalize_image_known_values():
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 255, 0, 51
    x = normalize_image(image)
    assert x.dtype == torch.float32 and x.shape == (3, 2, 3)
    expected = [
        (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0],
        (0.0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
        (0.2 - IMAGENET_MEAN[2]) / IMAGENET_STD[2],
    ]
    for c in range(3):
        torch.testing.assert_close(x[c], torch.full((2, 3), expected[c]))
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406) and IMAGENET_STD == (0.229, 0.224, 0.225)
    with pytest.raises(ValueError, match="uint8"):
        normalize_image(image.astype(np.float32))


class TinySoftmaxModel(nn.Module):
    """EPS-like: ``cams`` = softmax over K + 1 channels, background (last) dropped."""

    def __init__(self, num_fg: int = 3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.weight = torch.randn(num_fg + 1, 3, 1, 3, generator=g)

    def cams(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(F.conv2d(x, self.weight, padding=(0, 1)), dim=1)[:, :-1]


def test_fuse_cams_is_the_max_normalised_sum_over_scales_and_flips():
    """SMAF's fusion: F_c = Σ_s Σ_flip unflip(resize(softmax_c)) · y_c, then F_c / (max + 1e-5)."""
    model = TinySoftmaxModel()
    image = torch.randn(3, 13, 17)
    labels = np.array([1, 0, 1])
    keys, fused = fuse_cams(model, image, labels, scales=[1.0, 0.5, 1.5], flip=True)
    total = torch.zeros(3, 13, 17)
    for s in (1.0, 0.5, 1.5):
        size = (int(np.round(13 * s)), int(np.round(17 * s)))
        img = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)
        for flipped in (False, True):
            x = img.flip(-1) if flipped else img
            prob = model.cams(x)[0]
            prob = prob.flip(-1) if flipped else prob
            total += F.interpolate(prob[None], size=(13, 17), mode="bilinear", align_corners=False)[
                0
            ]
    want = total[[0, 2]].numpy()
    want = want / (want.reshape(2, -1).max(1)[:, None, None] + 1e-5)
    assert keys.tolist() == [0, 2]
    np.testing.assert_allclose(fused, want, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# the releases' procedure (SEAM, CPN, EPS, SMAF; algorithms.md §1.3 (c), (d))


@pytest.mark.parametrize("via_input_size", [False, True])
@pytest.mark.parametrize("flip", [True, False])
def test_release_multiscale_cams_matches_the_released_procedure(flip, via_input_size):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(2, 13, 18, 3), dtype=np.uint8)
    images[:, :, :6] //= 3  # strongly left/right asymmetric
    model = TinyCamModel()
    scales = (0.5, 1.0, 1.5, 2.0)
    got = release_multiscale_cams(
        model, images, scales=scales, flip=flip, via_input_size=via_input_size
    )
    assert model.batch_sizes == [4 if flip else 2] * len(scales)  # both images in one pass
    assert got.dtype == torch.float32 and got.shape == (2, 3, 13, 18)
    for image, maps in zip(images, got, strict=True):
        ref = naive_release_cams(model, image, scales, flip, via_input_size)
        np.testing.assert_allclose(maps.numpy(), ref, rtol=1e-4, atol=1e-4)
    single = release_multiscale_cams(
        model, images[1], scales=scales, flip=flip, via_input_size=via_input_size
    )
    torch.testing.assert_close(single, got[1])


def test_release_procedure_differs_from_irns():
    """The two procedures are not the same computation (different image resize and map
    canvas), so the config key matters."""
    image = np.random.default_rng(4).integers(0, 256, size=(13, 18, 3), dtype=np.uint8)
    model = TinyCamModel()
    release = release_multiscale_cams(
        model, image, scales=(1.0, 0.5), flip=True, via_input_size=False
    )
    irn = multiscale_cams(model, normalize_image(image), scales=(1.0, 0.5), flip=True, stride=2)
    assert (release - irn).abs().max() > 1e-3


def test_release_multiscale_rejects_bad_input():
    model = TinyCamModel()
    with pytest.raises(ValueError, match="uint8"):
        release_multiscale_cams(
            model, np.zeros((4, 4, 3)), scales=(1.0,), flip=False, via_input_size=False
        )
    with pytest.raises(ValueError, match="scales"):
        release_multiscale_cams(
            model, np.zeros((4, 4, 3), np.uint8), scales=(), flip=False, via_input_size=False
        )
