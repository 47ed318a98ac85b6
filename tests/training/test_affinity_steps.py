"""The affinity networks' step losses against references written out here: nearest downscaling
and pixel-pair labels by loops, the naive affinity loops of test_random_walk, and the pair-loss
formulas of algorithms.md §1.6 (masked means over the whole batch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.refine.test_random_walk import naive_boundary_affinities, naive_feature_affinities
from wsss.refine.random_walk import pair_offsets
from wsss.training.affinity_steps import affinitynet_step_loss, irn_step_loss

EPS = 1e-5
RADIUS = 3


def naive_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(B, H, W) → (B, *size): output pixel i reads input pixel ⌊i · in / out⌋."""
    b, h, w = mask.shape
    out = np.zeros((b, *size), dtype=mask.dtype)
    for y, x in np.ndindex(size):
        out[:, y, x] = mask[:, (y * h) // size[0], (x * w) // size[1]]
    return out


def naive_pair_loss(aff: np.ndarray, labels: np.ndarray, weights: tuple[float, float, float]):
    """w_bg·L_bg+ + w_fg·L_fg+ + w_neg·L_neg over every in-map pair of the batch whose labels are
    both not 255: both 0 → bg+, equal and > 0 → fg+, different → negative."""
    sums, counts = [0.0, 0.0, 0.0], [0, 0, 0]
    b, h, w = labels.shape
    for p, (dy, dx) in enumerate(pair_offsets(RADIUS)):
        for n, y, x in np.ndindex(b, h, w):
            if not (0 <= y + dy < h and 0 <= x + dx < w):
                continue
            first, second = labels[n, y, x], labels[n, y + dy, x + dx]
            if 255 in (first, second):
                continue
            a = aff[n, p, y, x]
            kind = 2 if first != second else (0 if first == 0 else 1)
            sums[kind] += -math.log(1 + EPS - a) if kind == 2 else -math.log(a + EPS)
            counts[kind] += 1
    means = [s / (c + EPS) for s, c in zip(sums, counts, strict=True)]
    assert all(counts), "the example must have pairs of every kind"
    return sum(wt * m for wt, m in zip(weights, means, strict=True))


def _batch(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    mask = np.zeros((2, 16, 20), dtype=np.uint8)
    mask[:, 4:12, 2:9] = 1
    mask[1, 6:14, 11:18] = 3
    mask[rng.random(mask.shape) < 0.1] = 255  # unsure pixels
    image = torch.from_numpy(rng.normal(size=(2, 3, 16, 20)).astype(np.float32))
    return {"image": image, "mask": torch.from_numpy(mask)}


def _net(channels: int):
    weight = torch.randn(channels, 3, 1, 1, generator=torch.Generator().manual_seed(3))
    return lambda x: torch.nn.functional.avg_pool2d(torch.nn.functional.conv2d(x, weight), 4)


def test_affinitynet_step_loss_vs_reference():
    batch, net = _batch(), _net(4)
    got = affinitynet_step_loss(net, batch, radius=RADIUS)
    features = net(batch["image"]).double().numpy()
    labels = naive_nearest(batch["mask"].numpy(), (4, 5))
    aff = np.stack([naive_feature_affinities(f, RADIUS) for f in features])
    expected = naive_pair_loss(aff, labels, (0.25, 0.25, 0.5))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_irn_step_loss_vs_reference():
    batch, net = _batch(1), _net(1)
    got = irn_step_loss(net, batch, radius=RADIUS)
    boundary = torch.sigmoid(net(batch["image"])[:, 0]).double().numpy()
    labels = naive_nearest(batch["mask"].numpy(), (4, 5))
    aff = np.stack([naive_boundary_affinities(bmap, RADIUS) for bmap in boundary])
    # IRN: ((L_bg+ + L_fg+) / 2 + L_neg) / 2
    expected = naive_pair_loss(aff, labels, (0.25, 0.25, 0.5))
    assert float(got) == pytest.approx(expected, rel=1e-5)
