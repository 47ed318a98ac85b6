"""Segmentation losses: cross-entropy with online hard example mining (OHEM) and a DSN aux term.

Huang et al., "CCNet: Criss-Cross Attention for Semantic Segmentation", ICCV 2019 / TPAMI 2020
(OHEM on the main branch, plain cross-entropy weighted 0.4 on the DSN branch).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from wsss.utils.amp import float32

__all__ = ["multilabel_loss", "ohem_cross_entropy", "segmentation_loss", "segmentation_loss_terms"]


@float32
def multilabel_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-label soft-margin loss of ``(N, K)`` class scores against multi-hot ``labels``
    (IRN's CAM classifier on GAP scores; algorithms.md §1.2), in float32."""
    return F.multilabel_soft_margin_loss(scores, labels)


@float32
def ohem_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    thresh: float,
    min_kept: int,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Mean cross-entropy over the hard pixels of a batch (CCNet's ``OhemCrossEntropy2d``).

    With p(u) the softmax probability of the ground-truth class at a valid (non-ignored) pixel u
    and n the number of valid pixels in the batch:

    * if ``min_kept >= n``, every valid pixel is kept;
    * else the threshold is ``t = max(thresh, p_(min_kept))``, with ``p_(k)`` the k-th smallest
      p over the valid pixels (``t = thresh`` when ``min_kept`` is 0), and the pixels with
      ``p(u) <= t`` are kept — those below ``thresh``, or at least ``min_kept`` of the hardest
      when fewer than that are below it.

    The loss is the mean cross-entropy over the kept pixels; the selection itself gets no
    gradient. Deliberate difference: the original estimated the threshold on an 8× downsampled
    copy of the probabilities and labels (with ``min_kept / 64``); here it is exact, at full
    resolution.

    Args:
        logits: ``(B, K, H, W)`` float logits.
        target: ``(B, H, W)`` integer labels in ``[0, K)`` or ``ignore_index``.
        thresh: probability threshold in [0, 1] (CCNet README: 0.7).
        min_kept: minimum number of kept pixels per batch (CCNet README: 100,000 per 2 crops of
            769²).
        ignore_index: label of pixels that never count.

    Returns:
        A scalar; 0 (still attached to ``logits``) when no pixel is kept.
    """
    if logits.dim() != 4 or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"need logits (B, K, H, W) and target (B, H, W), got {tuple(logits.shape)} and "
            f"{tuple(target.shape)}"
        )
    if not 0.0 <= thresh <= 1.0:
        raise ValueError(f"thresh must be in [0, 1], got {thresh!r}")
    if min_kept < 0:
        raise ValueError(f"min_kept must be >= 0, got {min_kept!r}")
    valid = target != ignore_index
    with torch.no_grad():
        probs = logits.detach().to(torch.promote_types(logits.dtype, torch.float32)).softmax(1)
        gt_prob = probs.gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)
        valid_prob = gt_prob[valid]
        num_valid = valid_prob.numel()
        if min_kept >= num_valid:
            keep = valid
        else:
            threshold = torch.tensor(float(thresh), dtype=gt_prob.dtype, device=gt_prob.device)
            if min_kept > 0:
                threshold = torch.maximum(threshold, valid_prob.kthvalue(min_kept).values)
            keep = valid & (gt_prob <= threshold)
    per_pixel = F.cross_entropy(logits, torch.where(keep, target, 0), reduction="none")
    return (per_pixel * keep).sum() / keep.sum().clamp(min=1)


def segmentation_loss(
    outputs: Mapping[str, torch.Tensor],
    target: torch.Tensor,
    *,
    aux_weight: float,
    ohem: Mapping | None,
    ignore_index: int = 255,
) -> torch.Tensor:
    """The total of :func:`segmentation_loss_terms`."""
    terms = segmentation_loss_terms(
        outputs, target, aux_weight=aux_weight, ohem=ohem, ignore_index=ignore_index
    )
    return terms["loss"]


@float32
def segmentation_loss_terms(
    outputs: Mapping[str, torch.Tensor],
    target: torch.Tensor,
    *,
    aux_weight: float,
    ohem: Mapping | None,
    ignore_index: int = 255,
) -> dict[str, torch.Tensor]:
    """Main cross-entropy (optionally OHEM) plus a weighted auxiliary cross-entropy.

    ``loss = CE_main(outputs["out"]) + aux_weight · CE(outputs["aux"])``, the second term only
    when ``outputs`` has ``"aux"`` (CCNet's DSN head in training mode) and ``aux_weight > 0``.
    As in CCNet, OHEM applies to the main branch only; the auxiliary branch uses plain
    cross-entropy.

    Args:
        outputs: model outputs, ``{"out": (B, K, H, W)[, "aux": (B, K, H, W)]}``.
        target: ``(B, H, W)`` labels.
        aux_weight: weight of the auxiliary term (CCNet: 0.4), >= 0.
        ohem: ``{"thresh", "min_kept"}`` for :func:`ohem_cross_entropy` on the main branch, or
            None for plain cross-entropy.
        ignore_index: label of pixels that never count.

    Returns:
        ``{"main", "loss"}``, plus ``"aux"`` (unweighted) when the auxiliary term counts.
    """
    if aux_weight < 0:
        raise ValueError(f"aux_weight must be >= 0, got {aux_weight!r}")
    if ohem is None:
        loss = F.cross_entropy(outputs["out"], target, ignore_index=ignore_index)
    else:
        if set(ohem) != {"thresh", "min_kept"}:
            raise ValueError(f"ohem needs exactly the keys thresh and min_kept, got {dict(ohem)}")
        loss = ohem_cross_entropy(
            outputs["out"],
            target,
            thresh=float(ohem["thresh"]),
            min_kept=int(ohem["min_kept"]),
            ignore_index=ignore_index,
        )
    terms = {"main": loss}
    if aux_weight > 0 and "aux" in outputs:
        aux = F.cross_entropy(outputs["aux"], target, ignore_index=ignore_index)
        loss = loss + aux_weight * aux
        terms["aux"] = aux
    return {**terms, "loss": loss}
