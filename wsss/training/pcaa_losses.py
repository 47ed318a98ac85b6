"""PCAA's losses: bin labels from a mask, the focal loss on partial-CAM bin scores, the total.

Liu et al., "Partial Class Activation Attention for Semantic Segmentation", CVPR 2022; spec
§2.4: ``loss = CE(out) + 0.4·CE(aux) + 1.0·mean_over_bin_grids(focal(bin scores, bin labels))``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from wsss.training.losses import segmentation_loss_terms
from wsss.utils.amp import float32

__all__ = ["bin_labels", "focal_loss", "pcaa_loss", "pcaa_loss_terms"]


def bin_labels(
    target: torch.Tensor,
    num_classes: int,
    bins: tuple[int, int],
    *,
    threshold: float = 0.01,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Which classes each bin of a ``(b_h, b_w)`` grid contains (PCAA's partial-CAM targets).

    The fraction q of class k in bin b is the share of the bin's pixels labelled k, with
    ``ignore_index`` pixels counted in the bin but in no class (the original pools a one-hot
    mask whose ignored pixels are all-zero). Bins follow ``adaptive_avg_pool2d`` (equal blocks
    when the mask size is divisible by the grid). Label = 1 if ``q >= threshold``, 0 if
    ``q = 0``, ``ignore_index`` if ``0 < q < threshold`` (too little of the class to demand
    either answer).

    Args:
        target: ``(N, H, W)`` integer labels in ``[0, num_classes)`` or ``ignore_index``.
        num_classes: K.
        bins: ``(b_h, b_w)``.
        threshold: smallest fraction that makes a positive (0.01).

    Returns:
        ``(N, K, b_h, b_w)`` float32 holding 0, 1 or ``ignore_index``.

    Raises:
        ValueError: if ``target`` holds a value outside ``[0, K)`` and not ``ignore_index``.
    """
    valid = target != ignore_index
    if (target[valid] < 0).any() or (target[valid] >= num_classes).any():
        raise ValueError(f"target values must be in [0, {num_classes}) or {ignore_index}")
    onehot = F.one_hot(torch.where(valid, target, 0).long(), num_classes)
    onehot = (onehot * valid.unsqueeze(-1)).permute(0, 3, 1, 2).float()
    fraction = F.adaptive_avg_pool2d(onehot, tuple(bins))
    labels = (fraction > 0).float()
    return labels.masked_fill((fraction > 0) & (fraction < threshold), float(ignore_index))


@float32
def focal_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, gamma: float = 2.0, ignore_index: int = 255
) -> torch.Tensor:
    """PCAA's class-balanced binary focal loss on bin scores (spec §2.4).

    For each class k separately, over its non-ignored entries (all images and bins):
    ``mean((1 - p_t)^γ · (-log p_t))`` with ``p = sigmoid(logit)``, ``p_t = p`` where the label
    is 1 and ``1 - p`` where it is 0; then the mean over the classes. ``-log p_t`` is computed
    from the logit (``softplus``), the original's BCE on sigmoid outputs is the same up to its
    clamp of the log at -100. A class whose entries are all ignored is left out of the mean
    (the original would return NaN); 0 (attached to ``logits``) if every class is.

    Args:
        logits: ``(N, K, b_h, b_w)`` pre-sigmoid bin scores.
        labels: same shape, 0/1 or ``ignore_index`` (:func:`bin_labels`).
        gamma: focusing exponent γ (2).
    """
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ")
    valid = labels != ignore_index
    positive = labels == 1
    signed = torch.where(positive, logits, -logits)  # log p_t = logsigmoid(signed)
    p_t = signed.sigmoid()
    per_entry = (1 - p_t).pow(gamma) * F.softplus(-signed) * valid
    per_class_sum = per_entry.transpose(0, 1).flatten(1).sum(1)
    per_class_count = valid.transpose(0, 1).flatten(1).sum(1)
    present = per_class_count > 0
    if not present.any():
        return logits.sum() * 0.0
    return (per_class_sum[present] / per_class_count[present]).mean()


def pcaa_loss(
    outputs: Mapping[str, torch.Tensor | tuple[torch.Tensor, ...]],
    target: torch.Tensor,
    **kwargs: object,
) -> torch.Tensor:
    """The total of :func:`pcaa_loss_terms` (same arguments)."""
    return pcaa_loss_terms(outputs, target, **kwargs)["loss"]


@float32
def pcaa_loss_terms(
    outputs: Mapping[str, torch.Tensor | tuple[torch.Tensor, ...]],
    target: torch.Tensor,
    *,
    aux_weight: float = 0.4,
    cls_weight: float = 1.0,
    ohem: Mapping | None = None,
    gamma: float = 2.0,
    bin_threshold: float = 0.01,
    ignore_index: int = 255,
) -> dict[str, torch.Tensor]:
    """PCAA's training loss (spec §2.4) and its terms.

    ``CE_main(out) [OHEM if ohem] + aux_weight · CE(aux) + cls_weight · L_cls``, where
    ``L_cls`` is the mean over ``outputs["bin_logits"]`` (one map per bin grid) of
    :func:`focal_loss` against :func:`bin_labels` of ``target`` on that map's grid. The first two
    terms are :func:`wsss.training.losses.segmentation_loss` (the aux term only when ``outputs``
    has ``"aux"``); ``L_cls`` only when it has ``"bin_logits"`` (training mode).

    Args:
        outputs: :class:`wsss.models.pcaa.PCAA` training outputs: ``"out"``, ``"aux"``
            ``(N, K, H, W)``, ``"bin_logits"`` tuple of ``(N, K, b_h, b_w)``.
        target: ``(N, H, W)`` labels at the logits' size.
        aux_weight: DSN weight (0.4).
        cls_weight: partial-CAM focal loss weight (1.0).
        ohem: ``{"thresh", "min_kept"}`` for OHEM on the main branch (original: off; 0.7 /
            100,000 when on), or None.
        gamma: focal exponent (2).
        bin_threshold: bin-label ignore band upper bound (0.01).

    Returns:
        The terms of :func:`~wsss.training.losses.segmentation_loss_terms`, plus ``"cls"``
        (unweighted ``L_cls``) when it counts; ``"loss"`` is the total.
    """
    if cls_weight < 0:
        raise ValueError(f"cls_weight must be >= 0, got {cls_weight!r}")
    terms = segmentation_loss_terms(
        outputs, target, aux_weight=aux_weight, ohem=ohem, ignore_index=ignore_index
    )
    loss = terms.pop("loss")
    bin_maps = outputs.get("bin_logits", ())
    if cls_weight > 0 and bin_maps:
        num_classes = outputs["out"].shape[1]
        cls = sum(
            focal_loss(
                logits,
                bin_labels(
                    target,
                    num_classes,
                    tuple(logits.shape[-2:]),
                    threshold=bin_threshold,
                    ignore_index=ignore_index,
                ),
                gamma=gamma,
                ignore_index=ignore_index,
            )
            for logits in bin_maps
        )
        terms["cls"] = cls / len(bin_maps)
        loss = loss + cls_weight * terms["cls"]
    return {**terms, "loss": loss}
