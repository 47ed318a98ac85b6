"""Tests for wsss.data.transforms: container crop, rescale, and image/mask alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsss.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_MEAN_PIXEL,
    IMAGENET_STD,
    MapsTransform,
    augment_pair,
    random_crop,
    random_hflip,
    random_scale,
)

FILL = (7, 8, 9)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    # Values 10..250 never equal the fill values used below.
    return np.random.default_rng(seed).integers(10, 251, size=(h, w, 3), dtype=np.uint8)


def _placements(out: np.ndarray, src: np.ndarray, crop: int) -> list[tuple[int, int, int, int]]:
    """Every (sy, sx, dy, dx) such that ``out`` is ``src`` cropped/padded at that offset (naive)."""
    h, w = src.shape[:2]
    ly, lx = min(h, crop), min(w, crop)
    found = []
    for sy in range(max(h - crop, 0) + 1):
        for sx in range(max(w - crop, 0) + 1):
            for dy in range(max(crop - h, 0) + 1):
                for dx in range(max(crop - w, 0) + 1):
                    window = src[sy : sy + ly, sx : sx + lx]
                    if np.array_equal(out[dy : dy + ly, dx : dx + lx], window):
                        found.append((sy, sx, dy, dx))
    return found


def _outside(arr: np.ndarray, dy: int, dx: int, ly: int, lx: int) -> np.ndarray:
    keep = np.ones(arr.shape[:2], dtype=bool)
    keep[dy : dy + ly, dx : dx + lx] = False
    return arr[keep]


@pytest.mark.parametrize("shape", [(5, 7), (12, 15), (5, 15), (15, 6), (10, 10)])
def test_random_crop_is_a_container_crop(shape: tuple[int, int]) -> None:
    crop = 10
    h, w = shape
    image = _image(h, w)
    mask = np.random.default_rng(1).integers(0, 5, size=(h, w), dtype=np.uint8)
    for seed in range(5):
        out, out_mask = random_crop(image, mask, crop, np.random.default_rng(seed), image_fill=FILL)
        assert out.shape == (crop, crop, 3) and out.dtype == np.uint8
        assert out_mask.shape == (crop, crop) and out_mask.dtype == np.uint8
        places = _placements(out, image, crop)
        assert len(places) == 1, f"output is not a window/placement of the image: {places}"
        sy, sx, dy, dx = places[0]
        ly, lx = min(h, crop), min(w, crop)
        # Same window for the mask, padding is fill / 255.
        window = mask[sy : sy + ly, sx : sx + lx]
        assert np.array_equal(out_mask[dy : dy + ly, dx : dx + lx], window)
        assert (_outside(out, dy, dx, ly, lx) == np.array(FILL, np.uint8)).all()
        assert (_outside(out_mask, dy, dx, ly, lx) == 255).all()


def test_random_crop_reaches_every_offset() -> None:
    # Image 12 px and crop 10 along y (window start 0..2); 8 px along x (placement 0..2).
    image, crop = _image(12, 8), 10
    seen_src, seen_dst = set(), set()
    for seed in range(200):
        out, _ = random_crop(image, None, crop, np.random.default_rng(seed), image_fill=FILL)
        ((sy, _, _, dx),) = _placements(out, image, crop)
        seen_src.add(sy)
        seen_dst.add(dx)
    assert seen_src == {0, 1, 2}
    assert seen_dst == {0, 1, 2}


def test_random_crop_without_mask_and_scalar_fill() -> None:
    image = _image(4, 4)
    out, out_mask = random_crop(image, None, 6, np.random.default_rng(0), image_fill=3)
    assert out_mask is None
    ((_, _, dy, dx),) = _placements(out, image, 6)
    assert (_outside(out, dy, dx, 4, 4) == 3).all()


@pytest.mark.parametrize(("shape", "scale"), [((40, 54), (0.5, 0.5)), ((20, 30), (0.7, 1.3))])
def test_random_scale_output_size(shape: tuple[int, int], scale: tuple[float, float]) -> None:
    h, w = shape
    image = _image(h, w)
    # Sparse label values: any bilinear blend of two of them is not one of them.
    mask = np.random.default_rng(2).choice(np.array([0, 100, 200], np.uint8), size=(h, w))
    for seed in range(10):
        s = float(np.random.default_rng(seed).uniform(*scale))  # the one draw the function makes
        out, out_mask = random_scale(image, mask, scale, np.random.default_rng(seed))
        assert out.shape == (round(h * s), round(w * s), 3)
        assert out.dtype == np.uint8
        assert out_mask.shape == out.shape[:2]
        # Nearest neighbour: no blended label values.
        assert set(np.unique(out_mask)) <= set(np.unique(mask))


def test_random_scale_fixed_half() -> None:
    image = _image(40, 54)
    out, mask = random_scale(image, None, (0.5, 0.5), np.random.default_rng(0))
    assert out.shape == (20, 27, 3) and mask is None


def test_random_hflip_flips_both_or_neither() -> None:
    image = _image(6, 9)
    mask = np.arange(54, dtype=np.uint8).reshape(6, 9)
    flipped = 0
    for seed in range(20):
        out, out_mask = random_hflip(image, mask, np.random.default_rng(seed))
        if np.array_equal(out_mask, mask):
            assert np.array_equal(out, image)
        else:
            assert np.array_equal(out_mask, mask[:, ::-1])
            assert np.array_equal(out, image[:, ::-1])
            flipped += 1
    assert 0 < flipped < 20


def _block_pair(h: int, w: int, block: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A mask of constant blocks with random labels 0, 20, .., 180 and an image colouring them.

    Returns the image, the mask and the (256, 3) label → colour table.
    """
    rng = np.random.default_rng(seed)
    grid = 20 * rng.integers(0, 10, size=(-(-h // block), -(-w // block)))
    mask = np.kron(grid, np.ones((block, block), dtype=np.int64))[:h, :w].astype(np.uint8)
    colours = np.zeros((256, 3), dtype=np.uint8)
    colours[0:200:20] = rng.choice(np.arange(10, 250), size=(10, 3), replace=False)
    return colours[mask], mask, colours


def test_augment_pair_keeps_alignment_exactly_at_unit_scale() -> None:
    image, mask, colours = _block_pair(30, 41, 3, seed=3)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        out, out_mask = augment_pair(image, mask, rng, scale_range=(1.0, 1.0), crop_size=24)
        pad = out_mask == 255
        assert np.array_equal(out[~pad], colours[out_mask[~pad]])
        assert (out[pad] == np.array(IMAGENET_MEAN_PIXEL, np.uint8)).all()


@pytest.mark.parametrize("crop", [16, 64])
def test_augment_pair_keeps_alignment_through_scale_flip_crop(crop: int) -> None:
    image, mask, colours = _block_pair(40, 52, 10, seed=4)
    checked = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        out, out_mask = augment_pair(image, mask, rng, scale_range=(0.7, 1.3), crop_size=crop)
        assert out.shape == (crop, crop, 3) and out_mask.shape == (crop, crop)
        # Away from block edges (mask constant within ±3 px) bilinear image colour is exact.
        r = 3
        padded = np.pad(out_mask.astype(np.int16), r, constant_values=-1)
        for y in range(crop):
            for x in range(crop):
                window = padded[y : y + 2 * r + 1, x : x + 2 * r + 1]
                label = out_mask[y, x]
                if label == 255 or (window != label).any():
                    continue
                assert (out[y, x] == colours[label]).all(), (seed, y, x)
                checked += 1
        pad = out_mask == 255
        assert (out[pad] == np.array(IMAGENET_MEAN_PIXEL, np.uint8)).all()
        # Nearest-neighbour mask: only original labels (and the 255 padding) appear.
        assert set(np.unique(out_mask)) <= set(np.unique(mask)) | {255}
    assert checked > 100


def test_augment_pair_same_seed_same_output() -> None:
    image, mask, _ = _block_pair(30, 37, 4, seed=5)
    kwargs = dict(scale_range=(0.6, 1.4), crop_size=24, jitter=0.3)
    a = augment_pair(image, mask, np.random.default_rng(11), **kwargs)
    b = augment_pair(image, mask, np.random.default_rng(11), **kwargs)
    c = augment_pair(image, mask, np.random.default_rng(12), **kwargs)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not (np.array_equal(a[0], c[0]) and np.array_equal(a[1], c[1]))


def test_augment_pair_without_mask() -> None:
    image, _, _ = _block_pair(30, 37, 4, seed=6)
    out, mask = augment_pair(
        image, None, np.random.default_rng(0), scale_range=(0.9, 1.1), crop_size=20, jitter=0.2
    )
    assert mask is None and out.shape == (20, 20, 3) and out.dtype == np.uint8


def test_maps_follow_the_image_and_pad_with_zero():
    """A map equal to the image's red channel stays equal to it after scale/flip/crop (no
    jitter); padding is the mean pixel in the image and 0 in the maps."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)
    red = image[..., 0].astype(np.float32) / 255
    sample = {"image": image, "saliency": red, "fused": np.stack([red, 1 - red])}
    transform = MapsTransform(["saliency", "fused"], scale_range=(0.7, 1.3), crop_size=32, jitter=0)
    std, mean = (
        torch.tensor(IMAGENET_STD)[:, None, None],
        torch.tensor(IMAGENET_MEAN)[:, None, None],
    )
    for seed in range(5):
        out = transform(sample, np.random.default_rng(seed))
        assert out["saliency"].shape == (1, 32, 32) and out["fused"].shape == (2, 32, 32)
        pixels = out["image"] * std + mean
        padded = out["fused"].sum(0) < 0.5  # inside, red + (1 − red) = 1 survives resizing
        assert padded.any()  # 20 px × at most 1.3 < 32: always padded
        assert torch.all(out["saliency"][0][padded] == 0)
        pad_pixel = torch.tensor(IMAGENET_MEAN_PIXEL, dtype=torch.float32) / 255
        torch.testing.assert_close(
            pixels[:, padded], pad_pixel[:, None].expand(3, int(padded.sum()))
        )
        # the image is rounded to uint8 after the bilinear resize: within half a grey level
        torch.testing.assert_close(
            out["saliency"][0][~padded], pixels[0][~padded], atol=0.6 / 255, rtol=0
        )
        torch.testing.assert_close(out["fused"][0], out["saliency"][0])
