"""CPN's complementary patch pairs: the two copies cover the crop exactly once."""

import numpy as np
import pytest
import torch

from wsss.cam.complementary import ComplementaryPairTransform, grid_keep_mask, superpixel_keep_mask
from wsss.data.transforms import TrainTransform


def _image(seed=0, size=48):
    # four flat quadrants + noise: SLIC finds several segments
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3))
    img[: size // 2, : size // 2] = (1.0, -1.0, 0.0)
    img[size // 2 :, size // 2 :] = (-1.0, 1.0, 2.0)
    return img + rng.normal(0, 0.05, img.shape)


def test_superpixel_mask_hides_whole_segments():
    from skimage.segmentation import slic

    img = _image()
    mask = superpixel_keep_mask(img, np.random.default_rng(3), n_segments=16)
    assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
    segments = slic(img, n_segments=16, compactness=10, start_label=1, channel_axis=-1)
    for label in np.unique(segments):  # a superpixel is either hidden or kept, never split
        assert len(np.unique(mask[segments == label])) == 1
    # with replacement from 0..S: never more than ⌊(S + 1)/2⌋ segments hidden
    hidden = {int(v) for v in np.unique(segments[mask == 0])}
    assert len(hidden) <= (segments.max() + 1) // 2
    # same RNG state, same mask
    again = superpixel_keep_mask(img, np.random.default_rng(3), n_segments=16)
    assert np.array_equal(mask, again)


def test_grid_mask_and_ratio():
    mask, ratio = grid_keep_mask((50, 40), np.random.default_rng(0), cell_sizes=[16])
    assert mask.shape == (50, 40)
    cells = [mask[i, j] for i in range(0, 50, 16) for j in range(0, 40, 16)]  # 4 × 3 cells
    assert ratio == pytest.approx(np.mean(cells))
    for i in range(0, 50, 16):  # constant inside every cell
        for j in range(0, 40, 16):
            assert len(np.unique(mask[i : i + 16, j : j + 16])) == 1


@pytest.mark.parametrize("strategy", ["superpixel", "grid"])
def test_pair_transform_covers_the_crop_exactly_once(strategy):
    base = TrainTransform(scale_range=(1.0, 1.0), crop_size=32, jitter=0.0)
    transform = ComplementaryPairTransform(
        base, strategy=strategy, n_segments=8, cell_sizes=[16, 32]
    )
    rgb = (np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)
    sample = {"image": rgb, "labels": np.array([1.0, 0.0], dtype=np.float32)}
    out = transform(sample, np.random.default_rng(5))
    x, keep = out["image"], out["cp_mask"]
    assert keep.shape == (1, 32, 32)
    x1, x2 = x * keep, x * (1 - keep)
    torch.testing.assert_close(x1 + x2, x)  # M + (1 − M) = 1
    assert not ((x1 != 0) & (x2 != 0)).any()  # no pixel in both copies
    r1 = float(out["cp_ratio"])
    assert 0 <= r1 <= 1 and r1 + (1 - r1) == 1
    if strategy == "superpixel":
        assert r1 == pytest.approx(float(keep.mean()))
    # the base transform's output is untouched
    torch.testing.assert_close(x, base(sample, np.random.default_rng(5))["image"])


def test_unknown_strategy():
    with pytest.raises(ValueError, match="strategy"):
        ComplementaryPairTransform(None, strategy="random")
