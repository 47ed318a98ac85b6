"""Classifier-stage losses of SEAM and CPN (pure functions of tensors).

SEAM: Wang et al., CVPR 2020 (equivariant regularisation, equivariant cross regularisation,
the min-pooling loss on the PCM output). CPN: Zhang et al., ICCV 2021 (L_cls, L_tcp, L_cpcr).
algorithms.md §1.2(c), §2.1. Maps have the background in channel 0; ``labels`` are the K
foreground labels (multi-hot), the background being present in every image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsss.utils.amp import float32

__all__ = [
    "max_norm",
    "keep_pixel_max",
    "min_pooling_loss",
    "top_fraction_mean",
    "seam_loss",
    "cpn_loss",
]


@float32
def max_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per sample and channel: ReLU(ReLU(x) − min − ε) / (max − min + ε), with min and max of
    ReLU(x) over the pixels (SEAM's and CPN's ``max_norm``)."""
    x = F.relu(x)
    lo = x.flatten(2).min(-1).values[..., None, None]
    hi = x.flatten(2).max(-1).values[..., None, None]
    return F.relu(x - lo - eps) / (hi - lo + eps)


def keep_pixel_max(x: torch.Tensor, start: int = 0) -> torch.Tensor:
    """Zero every entry of channels ``start:`` below its pixel's maximum over those channels
    (the kept entries keep their value). SEAM's ``max_onehot`` is ``start=1`` (background left
    alone); CPN's is ``start=0`` (all channels compete)."""
    head, tail = x[:, :start], x[:, start:]
    peak = tail.max(1, keepdim=True).values
    tail = torch.where(tail < peak, torch.zeros_like(tail), tail)
    return torch.cat([head, tail], dim=1)


def min_pooling_loss(fg_maps: torch.Tensor) -> torch.Tensor:
    """Adaptive min-pooling loss: per pixel the max over the (label-masked) foreground maps, the
    k = ⌊hw/4⌋ smallest of those per sample, ReLU, summed and divided by k·N (SEAM §3.3)."""
    n = fg_maps.shape[0]
    per_pixel = fg_maps.max(1).values.flatten(1)
    k = per_pixel.shape[1] // 4
    if k == 0:
        return fg_maps.sum() * 0.0
    lowest = torch.topk(per_pixel, k, dim=1, largest=False).values
    return F.relu(lowest).sum() / (k * n)


def top_fraction_mean(x: torch.Tensor, fraction: float = 0.2) -> torch.Tensor:
    """Online hard example mining: the mean of the largest ⌊fraction·C·H·W⌋ entries of each
    sample, averaged over the batch."""
    flat = x.flatten(1)
    k = max(1, int(fraction * flat.shape[1]))
    return torch.topk(flat, k, dim=1).values.mean()


def _with_background(labels: torch.Tensor) -> torch.Tensor:
    """(N, K) foreground labels → (N, K + 1, 1, 1) with the background always present."""
    ones = labels.new_ones(labels.shape[0], 1)
    return torch.cat([ones, labels], dim=1)[..., None, None]


def _set_background(x: torch.Tensor) -> torch.Tensor:
    """Channel 0 ← 1 − max over the foreground channels (out of place)."""
    return torch.cat([1 - x[:, 1:].max(1, keepdim=True).values, x[:, 1:]], dim=1)


@float32
def seam_loss(
    cam1: torch.Tensor,
    cam_rv1: torch.Tensor,
    cam2: torch.Tensor,
    cam_rv2: torch.Tensor,
    labels: torch.Tensor,
    *,
    ohem_fraction: float = 0.2,
) -> dict[str, torch.Tensor]:
    """SEAM's four terms for a crop (view 1) and its downscaled copy (view 2).

    - ``cls``: multi-label soft-margin loss on the GAP of each view's foreground logits, averaged.
    - ``er``: mean |down(max_norm(cam1)) − max_norm(cam2)| over the foreground channels, both
      label-masked; "down" resizes view 1's map to view 2's grid (bilinear,
      ``align_corners=True``).
    - ``ecr``: for each view, the hardest ``ohem_fraction`` of |keep_pixel_max(other view's
      detached CAM) − this view's PCM map| over all K + 1 channels, view 1's maps brought to
      view 2's grid. Only the CAM targets get background = 1 − fg max; the PCM maps keep the
      background PCM propagated, as SEAM's ``train_SEAM.py`` does (CPN resets both).
    - ``rvmin``: :func:`min_pooling_loss` of each view's label-masked foreground PCM logits.

    Returns a dict with the four terms and ``loss`` = their sum.
    """
    y = _with_background(labels)
    size = cam2.shape[-2:]

    def down(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, size, mode="bilinear", align_corners=True)

    cls = 0.5 * (
        F.multilabel_soft_margin_loss(cam1.mean((2, 3))[:, 1:], labels)
        + F.multilabel_soft_margin_loss(cam2.mean((2, 3))[:, 1:], labels)
    )
    rvmin = 0.5 * (min_pooling_loss((cam_rv1 * y)[:, 1:]) + min_pooling_loss((cam_rv2 * y)[:, 1:]))
    n1, n2 = down(max_norm(cam1)) * y, max_norm(cam2) * y
    er = (n1[:, 1:] - n2[:, 1:]).abs().mean()
    n1, n2 = _set_background(n1), _set_background(n2)
    rv1, rv2 = down(max_norm(cam_rv1)) * y, max_norm(cam_rv2) * y
    ecr = top_fraction_mean(
        (keep_pixel_max(n2.detach(), 1) - rv1).abs(), ohem_fraction
    ) + top_fraction_mean((keep_pixel_max(n1.detach(), 1) - rv2).abs(), ohem_fraction)
    return {"cls": cls, "er": er, "ecr": ecr, "rvmin": rvmin, "loss": cls + er + ecr + rvmin}


@float32
def cpn_loss(
    maps: list[tuple[torch.Tensor, torch.Tensor]],
    labels: torch.Tensor,
    ratios: torch.Tensor,
    *,
    ohem_fraction: float = 0.2,
) -> dict[str, torch.Tensor]:
    """CPN's L_cls + L_tcp + L_cpcr for the full crop and its complementary pair (CPN §3).

    Args:
        maps: ``[(cam, cam_rv) of x, of x1 = x ⊙ M, of x2 = x ⊙ (1 − M)]``, each ``(N, K + 1,
            H, W)`` at the crop's resolution.
        labels: ``(N, K)`` foreground labels.
        ratios: ``(N,)`` r1 = visible share of x1 (r2 = 1 − r1).

    - ``cls``: ⅓ Σ_views MLSM(GAP(cam_v)[fg], y) + ⅓ Σ_views :func:`min_pooling_loss`
      (cam_rv_v ⊙ y, foreground).
    - ``tcp``: mean|sg(Ĉ1 + Ĉ2) − Ĉ| + mean|R̂ − R̂1 − R̂2| over the foreground channels, with
      Ĉ = max_norm(cam) ⊙ y, Ĉ1 = r1·max_norm(cam1) ⊙ y, Ĉ2 = r2·…, R̂ likewise for cam_rv.
    - ``cpcr``: then channel 0 of all six ← 1 − fg max;
      OHEM(|keep_pixel_max(sg(Ĉ − Ĉ1)) − R̂2|) + OHEM(|keep_pixel_max(sg(Ĉ − Ĉ2)) − R̂1|).
    """
    if len(maps) != 3:
        raise ValueError(f"cpn_loss needs the maps of 3 views (x, x1, x2), got {len(maps)}")
    y = _with_background(labels)
    r1 = ratios.to(labels.dtype)[:, None, None, None]
    scale = [torch.ones_like(r1), r1, 1 - r1]
    cls = (
        sum(
            F.multilabel_soft_margin_loss(cam.mean((2, 3))[:, 1:], labels)
            + min_pooling_loss((cam_rv * y)[:, 1:])
            for cam, cam_rv in maps
        )
        / 3
    )
    c = [s * max_norm(cam) * y for s, (cam, _) in zip(scale, maps, strict=True)]
    r = [s * max_norm(cam_rv) * y for s, (_, cam_rv) in zip(scale, maps, strict=True)]
    tcp = ((c[1] + c[2]).detach() - c[0])[:, 1:].abs().mean() + (r[0] - r[1] - r[2])[
        :, 1:
    ].abs().mean()
    c = [_set_background(t) for t in c]
    r = [_set_background(t) for t in r]
    cpcr = top_fraction_mean(
        (keep_pixel_max((c[0] - c[1]).detach()) - r[2]).abs(), ohem_fraction
    ) + top_fraction_mean((keep_pixel_max((c[0] - c[2]).detach()) - r[1]).abs(), ohem_fraction)
    return {"cls": cls, "tcp": tcp, "cpcr": cpcr, "loss": cls + tcp + cpcr}
