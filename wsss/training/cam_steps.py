"""One training step's loss of each CAM method: the forward passes it makes of a batch, then its
loss terms (:mod:`wsss.training.cam_losses`, :mod:`wsss.training.eps_losses`).

Each function is a ``loss_fn(model, batch)`` for :func:`wsss.training.loop.train_steps`; it returns
the loss, or a dict of its terms with the total under ``"loss"``. ``batch["image"]`` is the
normalised crop ``(B, 3, H, W)``, ``batch["labels"]`` the ``(B, K)`` multi-hot foreground labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsss.training.cam_losses import cpn_loss, seam_loss
from wsss.training.eps_losses import eps_loss
from wsss.training.losses import multilabel_loss

__all__ = [
    "cpn_step_loss",
    "eps_step_loss",
    "multilabel_step_loss",
    "paired_multilabel_step_loss",
    "seam_step_loss",
]


def multilabel_step_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """IRN's classifier: multi-label soft-margin loss on the GAP scores (algorithms.md §1.2)."""
    return multilabel_loss(model(batch["image"]), batch["labels"])


def paired_multilabel_step_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """CDA: originals and pasted copies (``(B, 2, ...)``) in one forward pass of 2B images."""
    images, labels = batch["image"].flatten(0, 1), batch["labels"].flatten(0, 1)
    return multilabel_loss(model(images), labels)


def seam_step_loss(model: torch.nn.Module, batch: dict, *, view_scale: float) -> dict:
    """SEAM's two views: the crop and a bilinear (``align_corners=True``) downscaled copy.
    As released, each view's maps are upsampled (bilinear, ``align_corners=True``) to that
    view's input size before any loss term."""
    x = batch["image"]
    small = F.interpolate(x, scale_factor=view_scale, mode="bilinear", align_corners=True)
    maps = []
    for view in (x, small):
        maps += [
            F.interpolate(m, view.shape[-2:], mode="bilinear", align_corners=True)
            for m in model(view)
        ]
    return seam_loss(*maps, batch["labels"])


def cpn_step_loss(model: torch.nn.Module, batch: dict) -> dict:
    """CPN: three passes (x, x ⊙ M, x ⊙ (1 − M)); maps upsampled to the crop (ac=True).
    ``batch["cp_mask"]`` is M, ``batch["cp_ratio"]`` its visible share."""
    x, keep = batch["image"], batch["cp_mask"]
    maps = []
    for view in (x, x * keep, x * (1 - keep)):
        cam, cam_rv = model(view)
        maps.append(
            tuple(
                F.interpolate(m, x.shape[-2:], mode="bilinear", align_corners=True)
                for m in (cam, cam_rv)
            )
        )
    return cpn_loss(maps, batch["labels"], batch["cp_ratio"])


def eps_step_loss(model: torch.nn.Module, batch: dict, *, tau: float, lam: float) -> dict:
    """EPS: classification + saliency loss of the fg + bg logits (``batch["saliency"]``)."""
    out = model(batch["image"])
    return eps_loss(out["logits"], batch["saliency"], batch["labels"], tau=tau, lam=lam)
