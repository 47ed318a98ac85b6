"""Tests for wsss.training.affinity_losses against hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.training.affinity_losses import (
    affinity_loss_terms,
    affinitynet_loss,
    irn_affinity_loss,
)

EPS = 1e-5
AFF = [0.9, 0.5, 0.2, 0.7, 1.0, 0.0]
BG = [True, True, False, False, False, False]
FG = [False, False, False, True, True, False]
NEG = [False, False, True, False, False, True]

# hand-written formulas of algorithms.md §1.6
L_BG = (-math.log(0.9 + EPS) - math.log(0.5 + EPS)) / (2 + EPS)
L_FG = (-math.log(0.7 + EPS) - math.log(1.0 + EPS)) / (2 + EPS)
L_NEG = (-math.log(1 + EPS - 0.2) - math.log(1 + EPS - 0.0)) / (2 + EPS)


def tensors(shape=(1, 2, 3)):
    aff = torch.tensor(AFF, dtype=torch.float64).reshape(shape).requires_grad_(True)
    masks = [torch.tensor(m).reshape(shape) for m in (BG, FG, NEG)]
    return aff, masks


def test_terms_hand_computed():
    aff, masks = tensors()
    terms = affinity_loss_terms(aff, *masks)
    assert math.isclose(terms["bg_pos"].item(), L_BG, rel_tol=1e-12)
    assert math.isclose(terms["fg_pos"].item(), L_FG, rel_tol=1e-12)
    assert math.isclose(terms["neg"].item(), L_NEG, rel_tol=1e-12)


@pytest.mark.parametrize("loss_fn", [affinitynet_loss, irn_affinity_loss])
def test_losses_hand_computed(loss_fn):
    aff, masks = tensors()
    if loss_fn is affinitynet_loss:
        expected = L_BG / 4 + L_FG / 4 + L_NEG / 2  # PSA
    else:
        expected = ((L_BG / 2 + L_FG / 2) + L_NEG) / 2  # IRN, displacement terms left out
    loss = loss_fn(aff, *masks)
    assert loss.ndim == 0
    assert math.isclose(loss.item(), expected, rel_tol=1e-12)
    loss.backward()
    # d/da of ¼·(−log(a + ε))/(2 + ε) at a bg+ pair, and ½·(−log(1 + ε − a))/(2 + ε) at a neg pair
    grad = aff.grad.flatten()
    assert math.isclose(grad[0].item(), -1 / (0.9 + EPS) / (2 + EPS) / 4, rel_tol=1e-9)
    assert math.isclose(grad[2].item(), 1 / (1 + EPS - 0.2) / (2 + EPS) / 2, rel_tol=1e-9)


def test_loss_uses_whole_batch_counts():
    # Pairs of two images share one count per set (the originals sum over the batch).
    aff, masks = tensors(shape=(2, 3, 1, 1))
    flat_aff, flat_masks = tensors(shape=(6,))
    torch.testing.assert_close(
        affinitynet_loss(aff, *masks), affinitynet_loss(flat_aff, *flat_masks)
    )


def test_empty_masks_and_unmasked_nan():
    aff = torch.tensor([0.3, float("nan"), 0.6], requires_grad=True)
    none = torch.zeros(3, dtype=torch.bool)
    bg = torch.tensor([True, False, False])
    assert affinitynet_loss(aff, none, none, none).item() == 0.0
    loss = irn_affinity_loss(aff, bg, none, none)
    assert math.isclose(loss.item(), -math.log(0.3 + EPS) / (1 + EPS) / 4, rel_tol=1e-6)
    loss.backward()
    assert torch.isfinite(aff.grad).all() and aff.grad[1] == 0 and aff.grad[2] == 0


def test_validation():
    aff, masks = tensors()
    with pytest.raises(ValueError, match="fg_pos shape"):
        affinitynet_loss(aff, masks[0], masks[1].reshape(6), masks[2])
    with pytest.raises(ValueError, match="bool"):
        irn_affinity_loss(aff, masks[0].float(), masks[1], masks[2])


def test_half_precision_is_promoted():
    n = 70000  # more pairs than float16 can count
    aff = torch.full((n,), 0.5, dtype=torch.float16)
    ones, none = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    loss = affinitynet_loss(aff, ones, none, none)
    assert loss.dtype == torch.float32
    assert math.isclose(loss.item(), -math.log(0.5 + EPS) * n / (n + EPS) / 4, rel_tol=1e-5)
