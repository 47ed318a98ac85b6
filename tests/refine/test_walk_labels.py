"""IRN's and PSA's random-walk label recipes against the dense reference of test_random_walk
(naive affinities, a dense transition matrix and its matrix power), with the recipe's own steps
(mirror averaging, padding, block averages, label ids) written out in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.refine.test_random_walk import (
    bilinear_up,
    dense_transition,
    dense_walk,
    irn_reference,
    naive_feature_affinities,
)
from wsss.data.transforms import normalize_image
from wsss.refine.random_walk import pair_offsets
from wsss.refine.walk_labels import irn_walk_label, psa_walk_label

CPU = torch.device("cpu")


class StubNet(torch.nn.Module):
    """A fixed 1×1 convolution (weights ``scale`` × N(0, 1)) averaged over ``down``×``down``
    blocks; records its inputs."""

    def __init__(self, channels: int, down: int, seed: int, scale: float = 1.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = scale * torch.randn(channels, 3, 1, 1, generator=g)
        self.down, self.seen = down, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return torch.nn.functional.avg_pool2d(torch.nn.functional.conv2d(x, self.weight), self.down)


def block_mean(maps: np.ndarray, k: int) -> np.ndarray:
    c, h, w = maps.shape
    out = np.zeros((c, h // k, w // k))
    for y in range(h // k):
        for x in range(w // k):
            out[:, y, x] = maps[:, y * k : (y + 1) * k, x * k : (x + 1) * k].mean(axis=(1, 2))
    return out


def ids_of(planes: np.ndarray, keys: list[int]) -> np.ndarray:
    """Argmax over [background, key planes...] → 0 or key + 1, pixel by pixel."""
    out = np.zeros(planes.shape[1:], dtype=np.int64)
    for y, x in np.ndindex(out.shape):
        best = int(np.argmax(planes[:, y, x]))
        out[y, x] = 0 if best == 0 else keys[best - 1] + 1
    return out


def _image_and_cams(height, width, classes, seed):
    """A random image; CAMs: one blob per class along the top, a little noise, low below."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    blobs = [np.exp(-((xx - cx) ** 2 + (yy - 0.25) ** 2) / 0.03) for cx in (0.2, 0.8)]
    cams = np.array(blobs[:classes]).reshape(classes, height, width)
    cams += 0.05 * rng.random((classes, height, width))
    return image, cams.astype(np.float32)


def test_irn_walk_label_vs_dense_reference():
    image, cams = _image_and_cams(16, 20, 2, seed=1)
    keys = [1, 3]
    walk = dict(radius=3, beta=4.0, exp_times=2, bg_threshold=0.5)
    net = StubNet(1, 4, seed=2)
    got = irn_walk_label(net, image, cams, keys, CPU, **walk)

    x = normalize_image(image)[None]
    assert torch.equal(net.seen[0], torch.cat([x, x.flip(-1)]))  # the image and its mirror
    logits = StubNet(1, 4, seed=2)(torch.cat([x, x.flip(-1)]))[:, 0].double().numpy()
    bmap = 1 / (1 + np.exp(-(0.5 * logits[0] + 0.5 * logits[1][:, ::-1])))
    seeds = block_mean(cams.astype(np.float64), 4)
    scores = irn_reference(seeds, bmap, 3, 4.0, 2, 0.5, out_size=(16, 20))
    expected = ids_of(scores, keys)
    assert got.shape == (16, 20)
    assert set(np.unique(expected)) == {0, 2, 4}  # every plane wins somewhere
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("classes", [2, 0])
def test_psa_walk_label_vs_dense_reference(classes):
    height, width = 20, 27  # padded to 24 × 32: a 3 × 4 feature grid
    image, cams = _image_and_cams(height, width, classes, seed=3)
    keys = [0, 4][:classes]
    walk = dict(radius=3, alpha=8.0, beta=8.0, logt=3)
    net = StubNet(4, 8, seed=4, scale=5.0)  # features apart enough to keep classes apart
    got = psa_walk_label(net, image, cams, keys, CPU, **walk)

    padded = np.zeros((1, 3, 24, 32), dtype=np.float32)  # zeros below and right
    padded[0, :, :height, :width] = normalize_image(image).numpy()
    assert torch.equal(net.seen[0], torch.from_numpy(padded))
    features = StubNet(4, 8, seed=4, scale=5.0)(torch.from_numpy(padded))[0].double().numpy()
    fg = cams.astype(np.float64)
    bg = (1 - fg.max(axis=0)) ** 8.0 if classes else np.ones((height, width))
    planes = np.zeros((1 + classes, 24, 32))
    planes[:, :height, :width] = np.concatenate([bg[None], fg])
    seeds = block_mean(planes, 8)
    trans = dense_transition(naive_feature_affinities(features, 3), pair_offsets(3), 8.0)
    walked = dense_walk(seeds, trans, 2**3)
    up = bilinear_up(walked, 8)[:, :height, :width]
    expected = ids_of(up, keys)
    if classes:
        assert len(np.unique(expected)) == 3  # background and both classes win somewhere
    np.testing.assert_array_equal(got, expected)
