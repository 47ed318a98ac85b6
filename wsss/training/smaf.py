"""SMAF self-training: the reactivated target, L_mac, and prototype denoising weights.

SMAF: "Self-training with Multi-scale Attention Fusion for Weakly Supervised Semantic
Segmentation", arXiv 2305.05841 (algorithms.md §2.3, step 3). The teacher's fused softmax maps
become per-pixel targets for a student of the same architecture. The prototype weighting is the
ProDA-style denoising the release carries commented out (Zhang et al., "Prototypical
Pseudo Label Denoising and Target Structure Learning for Domain Adaptive Semantic Segmentation",
CVPR 2021).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from wsss.utils.amp import float32

__all__ = [
    "DENOISE_MODES",
    "reactivation_target",
    "mac_loss",
    "prototype_weights",
    "batch_class_means",
    "initial_prototypes",
    "update_prototypes",
    "SelfTrainer",
]

DENOISE_MODES = ("none", "prototype", "prototype+saliency")


@float32
def reactivation_target(fused: torch.Tensor, labels: torch.Tensor, bg_score: float = 0.2):
    """R = [G ⊙ y, bg_score] divided per pixel by its largest entry.

    Each pixel's strongest class becomes 1 and the others keep their ratio to it; a pixel whose
    best foreground score is below ``bg_score`` becomes background = 1.

    Args:
        fused: ``(B, K, h, w)`` fused maps in [0, 1] (zero for absent classes).
        labels: ``(B, K)`` multi-hot.

    Returns:
        ``(B, K+1, h, w)``, background last.
    """
    fg = fused * labels[..., None, None]
    bg = torch.full_like(fg[:, :1], bg_score)
    target = torch.cat([fg, bg], dim=1)
    return target / target.amax(dim=1, keepdim=True)


@float32
def mac_loss(logits: torch.Tensor, target: torch.Tensor, weight: float = 100.0) -> torch.Tensor:
    """L_mac = weight · mean((softmax(logits) − R)²); ``logits`` are resized (bilinear,
    ``align_corners=True``) to the target's grid first."""
    logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=True)
    return weight * ((F.softmax(logits, dim=1) - target) ** 2).mean()


def batch_class_means(
    features: torch.Tensor, assignment: torch.Tensor, num_classes: int, min_pixels: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature per class over the pixels assigned to it.

    Args:
        features: ``(B, E, h, w)``.
        assignment: ``(B, h, w)`` class index per pixel (e.g. an argmax).
        num_classes: number of classes (rows of the result).
        min_pixels: classes with fewer pixels are reported as absent.

    Returns:
        ``(num_classes, E)`` means (zeros where absent) and a ``(num_classes,)`` bool "present".
    """
    sums, counts = _class_sums(features, assignment, num_classes)
    return sums / counts.clamp(min=1)[:, None], counts >= min_pixels


@float32
def _class_sums(
    features: torch.Tensor, assignment: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    flat = features.permute(0, 2, 3, 1).reshape(-1, features.shape[1])
    onehot = F.one_hot(assignment.reshape(-1).long(), num_classes).to(flat.dtype)
    return onehot.t() @ flat, onehot.sum(dim=0)


@torch.no_grad()
def initial_prototypes(
    model: nn.Module, images: Iterable[torch.Tensor], num_classes: int, device: torch.device
) -> torch.Tensor:
    """Class prototypes ``(num_classes, E)`` of a trained EPS network: the mean feature over all
    pixels of ``images`` (each ``(3, H, W)``, normalised) whose argmax is the class. The release
    expects such a file (``prototypes_eps``) but ships no script for it; classes never predicted
    get a zero prototype (weight 0 until the moving average reaches them)."""
    model.eval()
    sums = counts = None
    for image in images:
        out = model(image[None].to(device))
        s, c = _class_sums(out["features"], out["logits"].argmax(dim=1), num_classes)
        sums, counts = (s, c) if sums is None else (sums + s, counts + c)
    return sums / counts.clamp(min=1)[:, None]


def update_prototypes(
    prototypes: torch.Tensor, means: torch.Tensor, present: torch.Tensor, momentum: float
) -> torch.Tensor:
    """Moving average p_c ← (1 − m)·p_c + m·mean_c for the present classes."""
    mixed = (1 - momentum) * prototypes + momentum * means
    return torch.where(present[:, None], mixed, prototypes)


@float32
def prototype_weights(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """w_c(p) = ReLU(cos(f(p), prototype_c)): ``(B, E, h, w)``, ``(C, E)`` → ``(B, C, h, w)``."""
    f = F.normalize(features, dim=1)
    p = F.normalize(prototypes, dim=1)
    return F.relu(torch.einsum("behw,ce->bchw", f, p))


class SelfTrainer(nn.Module):
    """SMAF's student with what its loss needs across steps (one module, so a resume checkpoint
    holds all of it): the student, and for the prototype denoising an EMA teacher and the class
    prototypes.

    ``forward(batch)`` returns L_mac for a batch with ``image``, ``labels``, ``fused`` (the
    teacher's fused maps, jointly augmented; zero in padding) and, for
    ``denoise="prototype+saliency"``, ``saliency``. The target grid is a quarter of the crop
    (SMAF: 448 → 112).

    The EMA teacher and the prototype update follow the release (decay on parameters, buffers
    copied; prototypes averaged over EMA-argmax pixels of classes with ≥ ``min_pixels`` pixels).
    The release feeds the EMA the whole image and re-aligns its features to the crop; here it
    sees the student's crop, aligned by construction. With ``denoise="none"`` (the released
    behaviour, where the EMA has no effect on the loss) no EMA is kept.

    Args:
        student: an :class:`~wsss.models.eps.EPSNet` (features = its embedding).
        prototypes: ``(K+1, E)`` initial prototypes; needed unless ``denoise == "none"``.
    """

    def __init__(
        self,
        student: nn.Module,
        *,
        bg_score: float = 0.2,
        weight: float = 100.0,
        denoise: str = "none",
        prototypes: torch.Tensor | None = None,
        ema_decay: float = 0.999,
        prototype_momentum: float = 1e-4,
        min_pixels: int = 10,
        saliency_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        if denoise not in DENOISE_MODES:
            raise ValueError(f"denoise must be one of {DENOISE_MODES}, got {denoise!r}")
        self.student, self.denoise = student, denoise
        self.bg_score, self.weight = float(bg_score), float(weight)
        self.ema_decay, self.momentum = float(ema_decay), float(prototype_momentum)
        self.min_pixels, self.saliency_threshold = int(min_pixels), float(saliency_threshold)
        self.ema = None
        if denoise != "none":
            if prototypes is None:
                raise ValueError(f"denoise={denoise!r} needs initial prototypes")
            self.ema = copy.deepcopy(student).requires_grad_(False)
            self.register_buffer("prototypes", prototypes.detach().clone().float())

    def train(self, mode: bool = True) -> SelfTrainer:
        super().train(mode)
        if self.ema is not None:
            self.ema.eval()
        return self

    def param_groups(self) -> list[dict]:
        return self.student.param_groups()

    @torch.no_grad()
    def _ema_step(self) -> None:
        for e, s in zip(self.ema.parameters(), self.student.parameters(), strict=True):
            e.mul_(self.ema_decay).add_(s.detach(), alpha=1 - self.ema_decay)
        for e, s in zip(self.ema.buffers(), self.student.buffers(), strict=True):
            e.copy_(s)

    @torch.no_grad()
    def _denoised(self, fused: torch.Tensor, batch: dict) -> torch.Tensor:
        self._ema_step()
        out = self.ema(batch["image"])
        size = fused.shape[-2:]
        weights = prototype_weights(out["features"], self.prototypes[: fused.shape[1]])
        fused = fused * F.interpolate(weights, size=size, mode="bilinear", align_corners=True)
        if self.denoise == "prototype+saliency":
            sal = F.interpolate(batch["saliency"], size=size, mode="bilinear", align_corners=True)
            fused = fused * (sal > self.saliency_threshold)
        means, present = batch_class_means(
            out["features"], out["logits"].argmax(dim=1), len(self.prototypes), self.min_pixels
        )
        self.prototypes.copy_(update_prototypes(self.prototypes, means, present, self.momentum))
        return fused

    def forward(self, batch: dict) -> torch.Tensor:
        x = batch["image"]
        size = (x.shape[-2] // 4, x.shape[-1] // 4)
        fused = F.interpolate(batch["fused"], size=size, mode="bilinear", align_corners=True)
        if self.ema is not None:
            fused = self._denoised(fused, batch)
        target = reactivation_target(fused, batch["labels"], self.bg_score)
        return mac_loss(self.student(x)["logits"], target, self.weight)
