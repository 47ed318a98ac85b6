"""Tests for wsss.refine.random_walk against independent references.

References are built here from the definitions (algorithms.md §1.6–§1.7) with plain loops and
numpy: brute-force pair sets and segment distances (exact, with fractions), naive affinity loops
and a dense transition matrix whose powers are taken with ``np.linalg.matrix_power``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from wsss.refine.random_walk import (
    boundary_affinities,
    feature_affinities,
    pair_offsets,
    pair_validity,
    path_offsets,
    propagate,
    propagate_features,
    random_walk,
    transition_matrix,
)

# ----------------------------------------------------------------------------- references


def brute_pair_set(radius):
    """One representative (dy > 0, or dy = 0 and dx > 0) of every offset with 0 < |d|² < r²."""
    return {
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if 0 < dy * dy + dx * dx < radius * radius and (dy > 0 or (dy == 0 and dx > 0))
    }


def brute_path(dy, dx):
    """Integer points at Euclidean distance < 1 from the segment (0, 0)–(dy, dx), exactly."""
    reach = abs(dy) + abs(dx) + 2
    length_sq = dy * dy + dx * dx
    points = set()
    for y in range(-reach, reach + 1):
        for x in range(-reach, reach + 1):
            t = min(max(Fraction(y * dy + x * dx, length_sq), Fraction(0)), Fraction(1))
            dist_sq = (y - t * dy) ** 2 + (x - t * dx) ** 2
            if dist_sq < 1:
                points.add((y, x))
    return points


def naive_boundary_affinities(bmap, radius):
    """a[p, y, x] = 1 − max of B over the brute-force path, 1 outside the map (→ 0 if invalid)."""
    h, w = bmap.shape
    offsets = pair_offsets(radius)
    out = np.zeros((len(offsets), h, w))
    for p, (dy, dx) in enumerate(offsets):
        path = brute_path(dy, dx)
        for y in range(h):
            for x in range(w):
                values = [
                    bmap[y + ky, x + kx] if 0 <= y + ky < h and 0 <= x + kx < w else 1.0
                    for ky, kx in path
                ]
                out[p, y, x] = 1.0 - max(values)
    return out


def naive_feature_affinities(feats, radius):
    c, h, w = feats.shape
    offsets = pair_offsets(radius)
    out = np.zeros((len(offsets), h, w))
    for p, (dy, dx) in enumerate(offsets):
        for y in range(h):
            for x in range(w):
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    diff = sum(abs(feats[k, y, x] - feats[k, y + dy, x + dx]) for k in range(c))
                    out[p, y, x] = math.exp(-diff / c)
    return out


def dense_transition(aff, offsets, beta):
    """Dense T: symmetric A (A_ij = A_ji = a^β, A_ii = 1), each column divided by its sum."""
    _, h, w = aff.shape
    n = h * w
    a = np.eye(n)
    for p, (dy, dx) in enumerate(offsets):
        for y in range(h):
            for x in range(w):
                if 0 <= y + dy < h and 0 <= x + dx < w:
                    i, j = y * w + x, (y + dy) * w + (x + dx)
                    a[i, j] = a[j, i] = aff[p, y, x] ** beta
    return a / a.sum(axis=0, keepdims=True)


def dense_walk(seeds, t_dense, steps):
    k, h, w = seeds.shape
    return (seeds.reshape(k, h * w) @ np.linalg.matrix_power(t_dense, steps)).reshape(k, h, w)


def bilinear_up(maps, factor):
    """Bilinear upsampling by an integer factor with align_corners=False (half-pixel centres)."""
    k, h, w = maps.shape
    out = np.zeros((k, h * factor, w * factor))
    for oy in range(h * factor):
        sy = max((oy + 0.5) / factor - 0.5, 0.0)
        y0 = min(int(math.floor(sy)), h - 1)
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for ox in range(w * factor):
            sx = max((ox + 0.5) / factor - 0.5, 0.0)
            x0 = min(int(math.floor(sx)), w - 1)
            x1, fx = min(x0 + 1, w - 1), sx - x0
            out[:, oy, ox] = (1 - fy) * ((1 - fx) * maps[:, y0, x0] + fx * maps[:, y0, x1]) + fy * (
                (1 - fx) * maps[:, y1, x0] + fx * maps[:, y1, x1]
            )
    return out


def t64(array):
    return torch.as_tensor(np.asarray(array), dtype=torch.float64)


# ----------------------------------------------------------------------------- pair sets


def test_pair_counts():
    assert len(pair_offsets(5)) == 34
    assert len(pair_offsets(10)) == 152


@pytest.mark.parametrize("radius", [2, 3, 4, 5, 7])
def test_pair_set_matches_brute_force(radius):
    offsets = pair_offsets(radius)
    assert len(offsets) == len(set(offsets))
    assert set(offsets) == brute_pair_set(radius)


def test_pair_set_radius_3_literal():
    assert pair_offsets(3) == [
        (0, 1), (0, 2),
        (1, -2), (1, -1), (1, 0), (1, 1), (1, 2),
        (2, -2), (2, -1), (2, 0), (2, 1), (2, 2),  # 2² + 2² = 8 < 9
    ]  # fmt: skip


@pytest.mark.parametrize("height,width,radius", [(4, 6, 3), (3, 2, 4), (1, 1, 2)])
def test_pair_validity_by_loop(height, width, radius):
    offsets = pair_offsets(radius)
    valid = pair_validity(height, width, offsets)
    assert valid.dtype == torch.bool and valid.shape == (len(offsets), height, width)
    for p, (dy, dx) in enumerate(offsets):
        for y in range(height):
            for x in range(width):
                assert bool(valid[p, y, x]) == (0 <= y + dy < height and 0 <= x + dx < width)


def test_path_offsets_literals():
    assert path_offsets(0, 3) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert sorted(path_offsets(1, 2)) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    diagonal = {(y, x) for y in range(3) for x in range(3) if abs(x - y) <= 1}
    assert set(path_offsets(2, 2)) == diagonal


@pytest.mark.parametrize(
    "offset", pair_offsets(5) + [(3, -7), (-2, 5), (0, -4), (6, 1), (9, 4), (-5, -5)]
)
def test_path_offsets_vs_brute_distance(offset):
    path = path_offsets(*offset)
    assert len(path) == len(set(path))
    assert set(path) == brute_path(*offset)
    assert (0, 0) in path and offset in path


# ----------------------------------------------------------------------------- affinities


def test_boundary_affinities_hand_example():
    bmap = np.zeros((5, 7))
    bmap[2, 3] = 0.8
    aff = boundary_affinities(t64(bmap), 5).numpy()
    offsets = pair_offsets(5)
    p = offsets.index((0, 4))
    assert aff[p, 2, 1] == pytest.approx(0.2)  # (2, 1) → (2, 5) crosses (2, 3)
    assert aff[p, 1, 1] == pytest.approx(1.0)  # the row above is free
    assert aff[p, 2, 3] == pytest.approx(0.0)  # (2, 3) → (2, 7) leaves the map
    assert aff[offsets.index((0, 1)), 0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("radius", [3, 5])
def test_boundary_affinities_vs_naive_loop(radius):
    rng = np.random.default_rng(0)
    bmap = rng.random((6, 9)) ** 3
    bmap[3, :] = np.where(rng.random(9) > 0.5, 1.0, bmap[3, :])
    expected = naive_boundary_affinities(bmap, radius)
    got = boundary_affinities(t64(bmap), radius).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    invalid = ~pair_validity(6, 9, pair_offsets(radius)).numpy()
    assert invalid.any() and np.all(got[invalid] == 0.0)


def test_boundary_affinities_batched_and_float32():
    rng = np.random.default_rng(1)
    maps = rng.random((3, 5, 6))
    batched = boundary_affinities(torch.tensor(maps, dtype=torch.float32), 4)
    assert batched.shape == (3, len(pair_offsets(4)), 5, 6) and batched.dtype == torch.float32
    for b in range(3):
        np.testing.assert_allclose(
            batched[b].numpy(), naive_boundary_affinities(maps[b], 4), atol=1e-6
        )


def test_feature_affinities_vs_naive_loop():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(2, 4, 5, 7))
    got = feature_affinities(t64(feats), 3)
    assert got.shape == (2, len(pair_offsets(3)), 5, 7)
    for b in range(2):
        np.testing.assert_allclose(got[b].numpy(), naive_feature_affinities(feats[b], 3))
    np.testing.assert_allclose(feature_affinities(t64(feats[0]), 3).numpy(), got[0].numpy())


def test_affinity_gradients():
    gen = torch.Generator().manual_seed(3)
    bmap = torch.rand(2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda b: boundary_affinities(b, 3), (bmap,))
    feats = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: feature_affinities(f, 3), (feats,))


def test_boundary_gradient_goes_to_path_maximum():
    bmap = torch.zeros(3, 6, dtype=torch.float64)
    bmap[1, 3] = 0.5
    bmap.requires_grad_(True)
    aff = boundary_affinities(bmap, 4)
    p = pair_offsets(4).index((0, 3))
    aff[p, 1, 1].backward()  # path (1, 1) … (1, 4); its maximum is (1, 3)
    expected = torch.zeros(3, 6, dtype=torch.float64)
    expected[1, 3] = -1.0
    torch.testing.assert_close(bmap.grad, expected)


# ----------------------------------------------------------------------------- transition / walk


def random_affinities(height, width, radius, seed):
    rng = np.random.default_rng(seed)
    aff = rng.random((len(pair_offsets(radius)), height, width))
    aff[~pair_validity(height, width, pair_offsets(radius)).numpy()] = 0.0
    return aff


def test_transition_matrix_vs_dense_reference():
    offsets = pair_offsets(3)
    aff = random_affinities(4, 5, 3, seed=4)
    trans = transition_matrix(t64(aff), offsets, beta=2.5)
    assert trans.layout == torch.sparse_coo and trans.shape == (20, 20)
    dense = trans.to_dense().numpy()
    np.testing.assert_allclose(dense, dense_transition(aff, offsets, 2.5), atol=1e-14)
    np.testing.assert_allclose(dense.sum(axis=0), 1.0, atol=1e-14)
    unnormalised = dense / np.diag(dense)[None, :]  # T_ij / T_jj = A_ij (as A_jj = 1)
    np.testing.assert_allclose(unnormalised, unnormalised.T, atol=1e-14)
    np.testing.assert_allclose(np.diag(unnormalised), 1.0)
    assert np.all(dense >= 0)
    # Only pairs within the radius are linked.
    ys, xs = np.divmod(np.arange(20), 5)
    dist_sq = (ys[:, None] - ys[None, :]) ** 2 + (xs[:, None] - xs[None, :]) ** 2
    assert np.all(dense[dist_sq >= 9] == 0)


@pytest.mark.parametrize("steps", [0, 1, 5, 2**4])
def test_random_walk_vs_dense_matrix_power(steps):
    offsets = pair_offsets(3)
    aff = random_affinities(5, 6, 3, seed=5)
    seeds = np.random.default_rng(6).random((3, 5, 6))
    trans = transition_matrix(t64(aff), offsets, beta=3.0)
    got = random_walk(t64(seeds), trans, steps=steps)
    assert got.shape == (3, 5, 6) and got.dtype == torch.float64
    expected = dense_walk(seeds, dense_transition(aff, offsets, 3.0), steps)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_random_walk_float32_and_csr_input():
    offsets = pair_offsets(3)
    aff = random_affinities(5, 6, 3, seed=7)
    seeds = np.random.default_rng(8).random((2, 5, 6))
    trans = transition_matrix(torch.tensor(aff, dtype=torch.float32), offsets, beta=3.0)
    seeds32 = torch.tensor(seeds, dtype=torch.float32)
    got = random_walk(seeds32, trans.to_sparse_csr(), steps=16)
    assert got.dtype == torch.float32
    expected = dense_walk(seeds, dense_transition(aff, offsets, 3.0), 16)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_boundary_wall_stops_propagation():
    height, width = 8, 10
    bmap = torch.zeros(height, width, dtype=torch.float64)
    bmap[:, 4] = 1.0
    seeds = torch.zeros(2, height, width, dtype=torch.float64)
    seeds[0, 3, 1] = 1.0  # left of the wall
    seeds[1, 5, 8] = 1.0  # right of the wall
    trans = transition_matrix(boundary_affinities(bmap, 5), pair_offsets(5), beta=10.0)
    walked = random_walk(seeds, trans, steps=256).numpy()
    assert np.all(walked[0, :, 4:] == 0) and np.all(walked[0, :, :4] > 0)
    assert np.all(walked[1, :, :5] == 0) and np.all(walked[1, :, 5:] > 0)
    scores = propagate(seeds, bmap, radius=5).numpy()
    labels = scores.argmax(axis=0)
    assert np.all(scores[1, :, 5:] == 0) and np.all(scores[2, :, :5] == 0)
    assert np.all(labels[:, 5:] != 1) and np.all(labels[:, :4] != 2)


# ----------------------------------------------------------------------------- propagate


def irn_reference(seeds, bmap, radius, beta, exp_times, bg, out_size=None, stride=4):
    aff = naive_boundary_affinities(bmap, radius)
    trans = dense_transition(aff, pair_offsets(radius), beta)
    walked = dense_walk(seeds * (1 - bmap)[None], trans, 2**exp_times)
    if out_size is not None:
        walked = bilinear_up(walked, stride)[:, : out_size[0], : out_size[1]]
    walked = walked / walked.max()
    return np.concatenate([np.full((1, *walked.shape[1:]), bg), walked])


@pytest.mark.parametrize(
    "exp_times,out_size", [(8, None), (3, None), (8, (18, 22)), (2, (20, 24)), (0, (1, 1))]
)
def test_propagate_vs_dense_reference(exp_times, out_size):
    rng = np.random.default_rng(9)
    bmap = rng.random((5, 6)) ** 2
    seeds = rng.random((2, 5, 6))
    got = propagate(
        t64(seeds), t64(bmap), radius=3, beta=4.0, exp_times=exp_times, bg_threshold=0.3,
        out_size=out_size,
    )  # fmt: skip
    expected = irn_reference(seeds, bmap, 3, 4.0, exp_times, 0.3, out_size)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-12)
    assert float(got[1:].max()) == pytest.approx(1.0)
    assert np.all(got[0].numpy() == 0.3)


def test_propagate_stride_and_zero_seeds():
    rng = np.random.default_rng(10)
    bmap = rng.random((4, 5))
    seeds = rng.random((1, 4, 5))
    got = propagate(
        t64(seeds), t64(bmap), radius=2, beta=2.0, exp_times=1, out_size=(7, 9), stride=2
    )
    expected = irn_reference(seeds, bmap, 2, 2.0, 1, 0.25, (7, 9), stride=2)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-12)
    zero = propagate(torch.zeros(2, 4, 5), torch.rand(4, 5), radius=2)
    assert zero.shape == (3, 4, 5) and torch.all(zero[1:] == 0) and torch.all(zero[0] == 0.25)


def test_propagate_features_vs_dense_reference():
    rng = np.random.default_rng(11)
    feats = rng.normal(size=(3, 5, 6))
    seeds = rng.random((3, 5, 6))
    got = propagate_features(t64(seeds), t64(feats), radius=3, beta=8.0, logt=3)
    trans = dense_transition(naive_feature_affinities(feats, 3), pair_offsets(3), 8.0)
    np.testing.assert_allclose(got.numpy(), dense_walk(seeds, trans, 8), rtol=1e-10, atol=1e-12)


def test_propagate_does_not_track_gradients():
    bmap = torch.rand(4, 5, requires_grad=True)
    out = propagate(torch.rand(1, 4, 5), bmap, radius=2, exp_times=1)
    assert not out.requires_grad


# ----------------------------------------------------------------------------- validation


def test_argument_validation():
    offsets = pair_offsets(3)
    aff = torch.rand(len(offsets), 4, 5)
    trans = transition_matrix(aff, offsets, beta=2.0)
    seeds = torch.rand(2, 4, 5)
    bmap = torch.rand(4, 5)
    cases = [
        lambda: pair_offsets(1),
        lambda: pair_offsets(2.5),
        lambda: path_offsets(0, 0),
        lambda: pair_validity(0, 4, offsets),
        lambda: pair_validity(3, 4, []),
        lambda: boundary_affinities(bmap, 1),
        lambda: boundary_affinities(torch.rand(5), 3),
        lambda: boundary_affinities(torch.ones(4, 5, dtype=torch.long), 3),
        lambda: feature_affinities(torch.rand(4, 5), 3),
        lambda: transition_matrix(aff, offsets, beta=0.0),
        lambda: transition_matrix(aff, offsets, beta=-1.0),
        lambda: transition_matrix(aff[:-1], offsets, beta=2.0),
        lambda: transition_matrix(aff + 1.5, offsets, beta=2.0),
        lambda: random_walk(seeds, trans, steps=-1),
        lambda: random_walk(seeds, trans, steps=1.5),
        lambda: random_walk(seeds, trans.to_dense(), steps=1),
        lambda: random_walk(torch.rand(2, 4, 6), trans, steps=1),
        lambda: random_walk(torch.rand(4, 5), trans, steps=1),
        lambda: propagate(seeds, torch.rand(4, 6)),
        lambda: propagate(seeds, bmap, beta=0.0),
        lambda: propagate(seeds, bmap, exp_times=-1),
        lambda: propagate(seeds, bmap, radius=1),
        lambda: propagate(seeds, bmap, out_size=(17, 20)),
        lambda: propagate(seeds, bmap, out_size=(16, 20), stride=0),
        lambda: propagate_features(seeds, torch.rand(3, 4, 6)),
        lambda: propagate_features(seeds, torch.rand(3, 4, 5), logt=-2),
    ]
    for i, case in enumerate(cases):
        with pytest.raises(ValueError):
            case()
            pytest.fail(f"case {i} did not raise")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_propagate_on_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(12)
    bmap = torch.rand(20, 24, generator=gen)
    seeds = torch.rand(3, 20, 24, generator=gen)
    cpu = propagate(seeds, bmap, out_size=(77, 90))
    gpu = propagate(seeds.cuda(), bmap.cuda(), out_size=(77, 90))
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)
    feats = torch.rand(2, 8, 20, 24, generator=gen, requires_grad=True)
    aff_cpu = feature_affinities(feats, 5)
    aff_gpu = feature_affinities(feats.detach().cuda(), 5)
    torch.testing.assert_close(aff_gpu.cpu(), aff_cpu.detach(), rtol=1e-5, atol=1e-6)
    bmaps = torch.rand(2, 20, 24, generator=gen)
    torch.testing.assert_close(
        boundary_affinities(bmaps.cuda(), 10).cpu(), boundary_affinities(bmaps, 10)
    )
