"""One training step's loss of the affinity networks (algorithms.md §1.6): the confident-region
labels brought to the network's output grid, their pixel pairs, the affinities, the pair loss.

Each function is a ``loss_fn(model, batch)`` for :func:`wsss.training.loop.train_steps`:
``batch["image"]`` is the normalised crop, ``batch["mask"]`` its ``(B, H, W)`` label map
(:mod:`wsss.refine.affinity_labels`, 255 = unsure).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsss.refine.affinity_labels import pair_labels
from wsss.refine.random_walk import boundary_affinities, feature_affinities
from wsss.training.affinity_losses import affinitynet_loss, irn_affinity_loss

__all__ = ["affinitynet_step_loss", "irn_step_loss"]


def _pair_labels_on_grid(out: torch.Tensor, mask: torch.Tensor, radius: int):
    """Pair labels of ``mask`` downscaled to ``out``'s grid with nearest (IRN: ×0.25)."""
    labels = F.interpolate(mask[:, None].float(), size=out.shape[-2:], mode="nearest")
    return pair_labels(labels[:, 0].long(), radius)


def affinitynet_step_loss(model: torch.nn.Module, batch: dict, *, radius: int) -> torch.Tensor:
    """PSA: :func:`affinitynet_loss` of the feature affinities exp(−mean |f_i − f_j|)."""
    out = model(batch["image"])
    bg_pos, fg_pos, neg = _pair_labels_on_grid(out, batch["mask"], radius)
    return affinitynet_loss(feature_affinities(out, radius), bg_pos, fg_pos, neg)


def irn_step_loss(model: torch.nn.Module, batch: dict, *, radius: int) -> torch.Tensor:
    """IRN: :func:`irn_affinity_loss` of 1 − the path maximum of σ(first output channel)."""
    out = model(batch["image"])
    bg_pos, fg_pos, neg = _pair_labels_on_grid(out, batch["mask"], radius)
    aff = boundary_affinities(torch.sigmoid(out[:, 0]), radius)
    return irn_affinity_loss(aff, bg_pos, fg_pos, neg)
