"""SEAM and CPN losses against the spec's formulas written out with numpy loops."""

import numpy as np
import pytest
import torch

from tests.oracles import naive_bilinear
from wsss.training.cam_losses import (
    cpn_loss,
    keep_pixel_max,
    max_norm,
    min_pooling_loss,
    seam_loss,
    top_fraction_mean,
)

EPS = 1e-5
rng = np.random.default_rng(0)


def np_max_norm(x):  # (N, C, H, W)
    x = np.maximum(x, 0)
    out = np.empty_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            lo, hi = x[n, c].min(), x[n, c].max()
            out[n, c] = np.maximum(x[n, c] - lo - EPS, 0) / (hi - lo + EPS)
    return out


def np_keep_max(x, start):
    out = x.copy()
    for n in range(x.shape[0]):
        for i in range(x.shape[2]):
            for j in range(x.shape[3]):
                m = x[n, start:, i, j].max()
                for c in range(start, x.shape[1]):
                    if x[n, c, i, j] < m:
                        out[n, c, i, j] = 0
    return out


def np_min_pool(fg):
    n, _, h, w = fg.shape
    k = h * w // 4
    per = fg.max(1).reshape(n, -1)
    return sum(np.maximum(np.sort(per[b])[:k], 0).sum() for b in range(n)) / (k * n)


def np_ohem(t, frac=0.2):
    flat = t.reshape(t.shape[0], -1)
    k = int(frac * flat.shape[1])
    return np.mean([np.sort(row)[::-1][:k].mean() for row in flat])


def np_mlsm(scores, y):
    s = 1 / (1 + np.exp(-scores))
    return np.mean(-(y * np.log(s) + (1 - y) * np.log(1 - s)).mean(1))


def np_set_bg(x):
    x = x.copy()
    x[:, 0] = 1 - x[:, 1:].max(1)
    return x


def t(a):
    return torch.from_numpy(a)


def test_helpers_on_hand_made_tensors():
    x = np.array([[[[-1.0, 0.5], [2.0, 1.0]], [[3.0, 3.0], [0.0, -2.0]]]])
    assert np.allclose(max_norm(t(x)).numpy(), np_max_norm(x))
    by_hand = [[0, (0.5 - EPS) / (2 + EPS)], [(2 - EPS) / (2 + EPS), (1 - EPS) / (2 + EPS)]]
    assert np.allclose(max_norm(t(x))[0, 0].numpy(), by_hand)
    assert keep_pixel_max(t(x), 0)[0, :, 0, 0].tolist() == [0.0, 3.0]
    assert keep_pixel_max(t(x), 0)[0, :, 1, 1].tolist() == [1.0, 0.0]
    assert keep_pixel_max(t(x), 1).equal(t(x))  # one competing channel: nothing zeroed
    y = rng.normal(size=(2, 4, 3, 3))
    for start in (0, 1):
        assert np.array_equal(keep_pixel_max(t(y), start).numpy(), np_keep_max(y, start))
    # min pooling: per-pixel max over classes [3, 3, 2, 1] → the k = 1 lowest is 1
    assert min_pooling_loss(t(x)).item() == pytest.approx(1.0)
    assert min_pooling_loss(-t(x)).item() == 0.0  # [1, -0.5, 0, 2] → ReLU(−0.5) = 0
    assert min_pooling_loss(t(y)).item() == pytest.approx(np_min_pool(y))
    assert top_fraction_mean(t(y)).item() == pytest.approx(np_ohem(y))


def np_bilinear_ac(a, size):
    return naive_bilinear(a, size, align_corners=True)


def seam_reference(cam1, rv1, cam2, rv2, labels):
    """SEAM's train_SEAM.py step on given maps, re-derived term by term: view 1's normalised
    maps are downscaled to view 2's grid; ER on the fg channels; only the two CAMs get
    channel 0 := 1 − fg max before ECR; the PCM maps keep their own background channel;
    OHEM keeps the top 20 % of (K + 1)·h·w entries per sample."""
    y = np.concatenate([np.ones((2, 1)), labels], 1)[:, :, None, None]
    size = cam2.shape[-2:]
    cls = (
        np_mlsm(cam1.mean((2, 3))[:, 1:], labels) + np_mlsm(cam2.mean((2, 3))[:, 1:], labels)
    ) / 2
    rvmin = (np_min_pool((rv1 * y)[:, 1:]) + np_min_pool((rv2 * y)[:, 1:])) / 2
    c1 = np_bilinear_ac(np_max_norm(cam1), size) * y
    r1 = np_bilinear_ac(np_max_norm(rv1), size) * y
    c2, r2 = np_max_norm(cam2) * y, np_max_norm(rv2) * y
    er = np.abs(c1[:, 1:] - c2[:, 1:]).mean()
    c1[:, 0] = 1 - c1[:, 1:].max(1)
    c2[:, 0] = 1 - c2[:, 1:].max(1)
    ecr = np_ohem(np.abs(np_keep_max(c2, 1) - r1)) + np_ohem(np.abs(np_keep_max(c1, 1) - r2))
    return {"cls": cls, "er": er, "ecr": ecr, "rvmin": rvmin}


def test_seam_loss_matches_formula():
    labels = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    cam1, rv1 = rng.normal(size=(2, 4, 10, 10)), rng.normal(size=(2, 4, 10, 10))
    cam2, rv2 = rng.normal(size=(2, 4, 3, 3)), rng.normal(size=(2, 4, 3, 3))
    got = seam_loss(t(cam1), t(rv1), t(cam2), t(rv2), t(labels))
    want = seam_reference(cam1, rv1, cam2, rv2, labels)
    for key, value in want.items():
        assert got[key].item() == pytest.approx(value, rel=1e-9), key
    assert got["loss"].item() == pytest.approx(sum(want.values()), rel=1e-9)


def test_seam_ecr_keeps_the_pcm_background():
    """Maps where the PCM's background channel differs from 1 − fg max: a reset of the PCM
    background (CPN's convention) changes ECR; SEAM's does not reset it."""
    labels = np.array([[1.0, 0.0], [0.0, 1.0]])
    cam = rng.normal(size=(2, 3, 4, 4))
    rv = np.abs(rng.normal(size=(2, 3, 4, 4)))
    rv[:, 0] = 0.05  # a flat, low background: its max_norm is 0 everywhere
    got = seam_loss(t(cam), t(rv), t(cam), t(rv), t(labels))["ecr"].item()
    assert got == pytest.approx(seam_reference(cam, rv, cam, rv, labels)["ecr"], rel=1e-9)
    y = np.concatenate([np.ones((2, 1)), labels], 1)[:, :, None, None]
    target, pcm = np_max_norm(cam) * y, np_max_norm(rv) * y
    target[:, 0] = 1 - target[:, 1:].max(1)
    reset = pcm.copy()
    reset[:, 0] = 1 - reset[:, 1:].max(1)
    with_reset = 2 * np_ohem(np.abs(np_keep_max(target, 1) - reset))
    assert abs(got - with_reset) > 1e-3


def test_cpn_loss_matches_formula():
    labels = np.array([[0.0, 1.0], [1.0, 1.0]])
    maps = [(rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(2, 3, 4, 4))) for _ in range(3)]
    ratios = np.array([0.3, 0.6])
    got = cpn_loss([(t(a), t(b)) for a, b in maps], t(labels), t(ratios))

    y = np.concatenate([np.ones((2, 1)), labels], 1)[:, :, None, None]
    r = ratios[:, None, None, None]
    cls = (
        sum(np_mlsm(c.mean((2, 3))[:, 1:], labels) + np_min_pool((rv * y)[:, 1:]) for c, rv in maps)
        / 3
    )
    scale = [1.0, r, 1 - r]
    C = [s * np_max_norm(c) * y for s, (c, _) in zip(scale, maps, strict=True)]
    R = [s * np_max_norm(rv) * y for s, (_, rv) in zip(scale, maps, strict=True)]
    tcp = np.abs(C[1] + C[2] - C[0])[:, 1:].mean() + np.abs(R[0] - R[1] - R[2])[:, 1:].mean()
    C, R = [np_set_bg(c) for c in C], [np_set_bg(x) for x in R]
    cpcr = np_ohem(np.abs(np_keep_max(C[0] - C[1], 0) - R[2])) + np_ohem(
        np.abs(np_keep_max(C[0] - C[2], 0) - R[1])
    )
    for key, value in {"cls": cls, "tcp": tcp, "cpcr": cpcr}.items():
        assert got[key].item() == pytest.approx(value, rel=1e-9), key
    assert got["loss"].item() == pytest.approx(cls + tcp + cpcr, rel=1e-9)


def test_cpn_first_consistency_term_updates_only_the_full_view():
    maps = [
        tuple(torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True) for _ in range(2))
        for _ in range(3)
    ]
    loss = cpn_loss(maps, torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([0.5]))
    grads = torch.autograd.grad(loss["tcp"], [m[0] for m in maps], allow_unused=True)
    assert grads[0] is not None and grads[0].abs().sum() > 0
    assert all(g is None or g.abs().sum() == 0 for g in grads[1:])  # sg(Ĉ1 + Ĉ2)
    with pytest.raises(ValueError, match="3 views"):
        cpn_loss(maps[:2], torch.ones(1, 2), torch.tensor([0.5]))
