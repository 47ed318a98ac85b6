"""Losses of affinity / boundary networks on labelled pixel pairs (algorithms.md §1.6).

* AffinityNet: Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision",
  CVPR 2018 (also SEAM, Wang et al., CVPR 2020).
* IRNet: Ahn, Cho & Kwak, "Weakly Supervised Learning of Instance Segmentation with Inter-pixel
  Relations", CVPR 2019 (affinity part only).

Both take affinities ``aff`` in [0, 1] and the boolean pair masks of
:func:`wsss.refine.affinity_labels.pair_labels`, all of the same shape (e.g. (B, P, h, w) in the
layout of :mod:`wsss.refine.random_walk`). Every mean runs over the whole batch:
Σ(mask · loss) / (Σ mask + 1e-5), as in both originals. Entries outside a mask contribute neither
value nor gradient (also when they are not finite). Half-precision affinities are promoted to
float32.
"""

from __future__ import annotations

import torch

from wsss.utils.amp import float32

__all__ = ["affinity_loss_terms", "affinitynet_loss", "irn_affinity_loss"]

_EPS = 1e-5


def _check(aff: torch.Tensor, masks: tuple[torch.Tensor, ...]) -> None:
    for name, mask in zip(("bg_pos", "fg_pos", "neg"), masks, strict=True):
        if mask.shape != aff.shape:
            raise ValueError(f"{name} shape {tuple(mask.shape)} != aff shape {tuple(aff.shape)}")
        if mask.dtype != torch.bool:
            raise ValueError(f"{name} must be a bool mask, got {mask.dtype}")


def _masked_sum_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ over the masked entries / (#mask + 1e-5); ``values`` are the masked entries already."""
    return values.sum() / (mask.sum().to(values.dtype) + _EPS)


@float32
def affinity_loss_terms(
    aff: torch.Tensor, bg_pos: torch.Tensor, fg_pos: torch.Tensor, neg: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The three masked cross-entropy means shared by AffinityNet and IRNet.

    Args:
        aff: affinities in [0, 1], any shape.
        bg_pos: bool mask of background-positive pairs (same shape).
        fg_pos: bool mask of foreground-positive pairs.
        neg: bool mask of negative pairs.

    Returns:
        ``{"bg_pos": Σ_bg+ −log(a + 1e-5) / (#bg+ + 1e-5), "fg_pos": likewise over fg+,
        "neg": Σ_neg −log(1 + 1e-5 − a) / (#neg + 1e-5)}`` (scalar tensors; 0 for empty masks).

    Raises:
        ValueError: if a mask is not bool or its shape differs from ``aff``'s.
    """
    _check(aff, (bg_pos, fg_pos, neg))
    # At least float32: counts and 1e-5 are not representable in half precision.
    aff = aff.to(torch.promote_types(aff.dtype, torch.float32))
    # Boolean indexing keeps unmasked entries (possibly non-finite) out of value and gradient.
    return {
        "bg_pos": _masked_sum_mean(-torch.log(aff[bg_pos] + _EPS), bg_pos),
        "fg_pos": _masked_sum_mean(-torch.log(aff[fg_pos] + _EPS), fg_pos),
        "neg": _masked_sum_mean(-torch.log(1.0 + _EPS - aff[neg]), neg),
    }


@float32
def affinitynet_loss(
    aff: torch.Tensor, bg_pos: torch.Tensor, fg_pos: torch.Tensor, neg: torch.Tensor
) -> torch.Tensor:
    """AffinityNet's loss (Ahn & Kwak, CVPR 2018): L = ¼·L_bg+ + ¼·L_fg+ + ½·L_neg.

    L_bg+ = Σ_bg+ −log(a + 1e-5) / (#bg+ + 1e-5), L_fg+ likewise over fg+ pairs and
    L_neg = Σ_neg −log(1 + 1e-5 − a) / (#neg + 1e-5) (see :func:`affinity_loss_terms`).

    Args:
        aff: affinities in [0, 1], e.g. (B, P, h, w).
        bg_pos: bool mask of background-positive pairs, same shape.
        fg_pos: bool mask of foreground-positive pairs.
        neg: bool mask of negative pairs.

    Returns:
        Scalar loss tensor.
    """
    terms = affinity_loss_terms(aff, bg_pos, fg_pos, neg)
    return terms["bg_pos"] / 4 + terms["fg_pos"] / 4 + terms["neg"] / 2


@float32
def irn_affinity_loss(
    aff: torch.Tensor, bg_pos: torch.Tensor, fg_pos: torch.Tensor, neg: torch.Tensor
) -> torch.Tensor:
    """IRNet's affinity loss (Ahn, Cho & Kwak, CVPR 2019) without the displacement terms.

    With pos = −log(a + 1e-5) and neg = −log(1 + 1e-5 − a): L_aff+ = ½·mean_bg+(pos) +
    ½·mean_fg+(pos), L_aff− = mean_neg(neg), total (L_aff+ + L_aff−) / 2; means are
    Σ(mask · loss) / (Σ mask + 1e-5). This equals :func:`affinitynet_loss` term for term; IRN
    adds (L_dp,fg + L_dp,bg) / 2 of its displacement branch, which is out of scope here.

    Args:
        aff: affinities in [0, 1] (IRN: 1 − max boundary probability on the path), e.g.
            (B, P, h, w).
        bg_pos: bool mask of background-positive pairs, same shape.
        fg_pos: bool mask of foreground-positive pairs.
        neg: bool mask of negative pairs.

    Returns:
        Scalar loss tensor.
    """
    terms = affinity_loss_terms(aff, bg_pos, fg_pos, neg)
    pos_loss = terms["bg_pos"] / 2 + terms["fg_pos"] / 2
    return (pos_loss + terms["neg"]) / 2
