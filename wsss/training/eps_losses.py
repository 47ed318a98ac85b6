"""EPS's objective: multi-label classification plus explicit pseudo-pixel (saliency) supervision.

Lee et al., "Railroading Labels: Explicit Pseudo-pixel Supervision for Weakly Supervised Semantic
Segmentation", CVPR 2021, Eq. 1–4 (algorithms.md §1.2(d)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsss.utils.amp import float32

__all__ = ["eps_loss"]


@float32
def eps_loss(
    logits: torch.Tensor,
    saliency: torch.Tensor,
    labels: torch.Tensor,
    *,
    tau: float = 0.4,
    lam: float = 0.5,
) -> dict[str, torch.Tensor]:
    """L = L_cls + L_sal of EPS.

    With p = softmax over the K + 1 channels (background last) and S the saliency map at the
    logits' size (nearest): a present class c is *salient* when o_c = Σ round(p_c)·round(S) /
    Σ (round(p_c) + 1e-4) > ``tau`` (p detached). Then fg = Σ_{c salient} p_c,
    bg = 1 − (p_bg + Σ_{c present, not salient} p_c), Ŝ = λ·fg + (1 − λ)·bg and
    L_sal = mean((Ŝ − S)²); L_cls is the multi-label soft margin on the GAP of the K fg logits.

    Args:
        logits: ``(B, K+1, h, w)`` class logits, background last.
        saliency: ``(B, 1, H, W)`` or ``(B, H, W)`` saliency in [0, 1].
        labels: ``(B, K)`` multi-hot.
        tau: overlap above which a class counts as salient (EPS's VOC script: 0.4).
        lam: weight of the foreground term in Ŝ.

    Returns:
        ``{"loss", "cls", "sal"}``.
    """
    num_fg = logits.shape[1] - 1
    if labels.shape[1] != num_fg:
        raise ValueError(f"labels have {labels.shape[1]} classes, logits {num_fg} + background")
    if saliency.ndim == 3:
        saliency = saliency[:, None]
    sal = F.interpolate(saliency.float(), size=logits.shape[-2:], mode="nearest")[:, 0]
    cls = F.multilabel_soft_margin_loss(logits[:, :num_fg].mean(dim=(2, 3)), labels)
    prob = F.softmax(logits, dim=1)
    hard = prob.detach()[:, :num_fg].round()
    # EPS adds its 1e-4 to every pixel of the denominator (1e-4·h·w in all), as released
    overlap = (hard * sal.round()[:, None]).sum(dim=(2, 3)) / (hard + 1e-4).sum(dim=(2, 3))
    present = labels > 0
    salient = (present & (overlap > tau)).float()[..., None, None]
    other = (present & (overlap <= tau)).float()[..., None, None]
    fg = (prob[:, :num_fg] * salient).sum(dim=1)
    bg = 1 - (prob[:, num_fg] + (prob[:, :num_fg] * other).sum(dim=1))
    estimate = lam * fg + (1 - lam) * bg
    sal_loss = ((estimate - sal) ** 2).mean()
    return {"loss": cls + sal_loss, "cls": cls, "sal": sal_loss}
