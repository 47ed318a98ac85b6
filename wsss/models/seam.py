"""SEAM's network and CPN's: ResNet-38 CAMs refined by the pixel correlation module (PCM).

SEAM: Wang et al., "Self-supervised Equivariant Attention Mechanism for Weakly Supervised
Semantic Segmentation", CVPR 2020. CPN: Zhang et al., "Complementary Patch for Weakly Supervised
Semantic Segmentation", ICCV 2021, which adds the pixel-region correlation module (PRCM).
algorithms.md §1.2(c), §2.1. Both output ``K + 1`` maps, channel 0 being the background.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.backbones import backbone_from_config
from wsss.utils.amp import float32

__all__ = ["guide_map", "pixel_correlation", "pixel_region_correlation", "PCMNet", "PRCM_LAYOUTS"]

PRCM_LAYOUTS = ("faithful", "transpose")


@float32
def guide_map(cam: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The detached, normalised CAM that PCM and PRCM propagate (SEAM/CPN ``cam_d_norm``).

    ReLU; ReLU(x − ε) / (spatial max + ε) per channel; channel 0 ← 1 − max over the foreground
    channels; every foreground value below its pixel's foreground maximum is set to 0 (ties all
    survive).

    Args:
        cam: ``(N, K + 1, h, w)`` CAM logits, background first.
    """
    with torch.no_grad():
        x = F.relu(cam.detach())
        peak = x.flatten(2).max(-1).values[..., None, None] + eps
        x = F.relu(x - eps) / peak
        fg = x[:, 1:]
        fg_max = fg.max(1, keepdim=True).values
        fg = torch.where(fg < fg_max, torch.zeros_like(fg), fg)
        return torch.cat([1 - fg_max, fg], dim=1)


@float32
def pixel_correlation(guide: torch.Tensor, embedding: torch.Tensor, eps: float = 1e-5):
    """PCM: ``guide`` propagated by the cosine affinity of ``embedding`` (SEAM eq. 5).

    ĝ = g / (‖g‖₂ + ε) per pixel; A = ReLU(ĝᵀĝ) (hw × hw); each column j divided by
    Σ_i A[i, j] + ε; output = guide (C × hw) · A.

    Args:
        guide: ``(N, C, h, w)`` maps (resized to the embedding's size if needed, bilinear with
            ``align_corners=True``).
        embedding: ``(N, D, h, w)`` pixel embedding (SEAM: ``f9`` of the feature stack).
    """
    n, _, h, w = embedding.shape
    if guide.shape[-2:] != (h, w):
        guide = F.interpolate(guide, (h, w), mode="bilinear", align_corners=True)
    g = embedding.flatten(2)
    g = g / (g.norm(dim=1, keepdim=True) + eps)
    aff = F.relu(g.transpose(1, 2) @ g)
    aff = aff / (aff.sum(1, keepdim=True) + eps)
    return (guide.flatten(2) @ aff).view(n, -1, h, w)


@float32
def pixel_region_correlation(
    guide: torch.Tensor,
    features: torch.Tensor,
    values: torch.Tensor,
    key_conv: nn.Module,
    *,
    layout: str = "faithful",
) -> torch.Tensor:
    """CPN's PRCM: per-class region vectors attend over the pixels (CPN §3.3).

    P = softmax over positions of ``guide`` (per class); region vectors ctx = P · featuresᵀ
    (N, D, C, 1); keys = ReLU(key_conv(ctx)) (N, E, C, 1); S = keys' · values / √C with
    ``values`` (N, E, h·w); output softmax over positions → (N, C, h, w).

    ``layout`` sets how keys become (N, C, E): ``"faithful"`` reinterprets the memory of the
    (N, E, C, 1) tensor as (N, C, E) as the released code does (rows then mix channels of
    several classes); ``"transpose"`` permutes axes, which is what the paper describes. The
    1/√C scale (C = number of maps) is kept as released.
    """
    if layout not in PRCM_LAYOUTS:
        raise ValueError(f"prcm_layout must be one of {PRCM_LAYOUTS}, got {layout!r}")
    n, c, h, w = guide.shape
    weights = torch.softmax(guide.flatten(2), dim=-1)  # (N, C, hw)
    ctx = (weights @ features.flatten(2).transpose(1, 2)).transpose(1, 2)[..., None]
    keys = F.relu(key_conv(ctx))  # (N, E, C, 1)
    if layout == "faithful":
        keys = keys.reshape(n, c, -1)
    else:
        keys = keys[..., 0].transpose(1, 2)
    scores = keys @ values.flatten(2) / math.sqrt(c)
    return torch.softmax(scores, dim=-1).view(n, c, h, w)


class PCMNet(nn.Module):
    """ResNet-38 → Dropout2d → ``fc8`` (K + 1 maps) refined by PCM (SEAM), plus PRCM (CPN).

    Feature stack for the affinities: [image resized to the CAM grid (bilinear,
    ``align_corners=True``); ReLU(``f8_3``(conv4)); ReLU(``f8_4``(conv5))] with conv4/conv5
    detached; ``f9`` embeds it for PCM. With ``prcm``: ``cam_rv`` = PCM + PRCM ⊙ guide, where
    PRCM reuses ``f9`` for its values and adds ``f10`` for its keys.

    Args:
        num_fg_classes: K.
        backbone: backbone config (``{"name": "resnet38", ...}`` in SEAM and CPN).
        prcm: add CPN's pixel-region correlation module.
        prcm_layout: ``"faithful"`` | ``"transpose"`` (see :func:`pixel_region_correlation`).
        embed_channels: (f8_3, f8_4, f9) widths; SEAM/CPN: (64, 128, 192).
        dropout: Dropout2d rate before ``fc8`` (0.5).
        feature_stages: the two side stages (detached, for the feature stack) and the top stage
            (for ``fc8``) in the backbone's ``forward_stages``; ResNet-38: conv4, conv5, conv6.
            Any backbone whose three stages share one stride works (e.g. a ResNet at output
            stride 8: layer2, layer3, layer4).
    """

    # SEAM's and CPN's released networks return (cam, cam_rv) upsampled (bilinear,
    # align_corners=True) to the input size; the `release` CAM inference repeats that step.
    maps_at_input_size = True

    def __init__(
        self,
        *,
        num_fg_classes: int,
        backbone: Mapping,
        prcm: bool = False,
        prcm_layout: str = "faithful",
        embed_channels: tuple[int, int, int] = (64, 128, 192),
        dropout: float = 0.5,
        feature_stages: tuple[str, str, str] = ("conv4", "conv5", "conv6"),
    ) -> None:
        super().__init__()
        if int(num_fg_classes) < 1:
            raise ValueError(f"num_fg_classes must be >= 1, got {num_fg_classes!r}")
        if prcm_layout not in PRCM_LAYOUTS:
            raise ValueError(f"prcm_layout must be one of {PRCM_LAYOUTS}, got {prcm_layout!r}")
        self.build_kwargs = {
            "num_fg_classes": int(num_fg_classes),
            "backbone": copy.deepcopy(dict(backbone)),
            "prcm": bool(prcm),
            "prcm_layout": prcm_layout,
            "embed_channels": tuple(embed_channels),
            "dropout": float(dropout),
            "feature_stages": tuple(feature_stages),
        }
        self.backbone = backbone_from_config(backbone)
        chans = self.backbone.stage_channels
        missing = [name for name in feature_stages if name not in chans]
        if len(feature_stages) != 3 or missing:
            raise ValueError(
                f"feature_stages must name 3 stages of the backbone ({sorted(chans)}), "
                f"got {list(feature_stages)}"
            )
        self.feature_stages = tuple(feature_stages)
        side_a, side_b, top = self.feature_stages
        c3, c4, c9 = embed_channels
        self.dropout = nn.Dropout2d(dropout)
        self.fc8 = nn.Conv2d(chans[top], num_fg_classes + 1, 1, bias=False)
        self.f8_3 = nn.Conv2d(chans[side_a], c3, 1, bias=False)
        self.f8_4 = nn.Conv2d(chans[side_b], c4, 1, bias=False)
        self.f9 = nn.Conv2d(3 + c3 + c4, c9, 1, bias=False)
        nn.init.xavier_uniform_(self.fc8.weight)
        nn.init.kaiming_normal_(self.f8_3.weight)
        nn.init.kaiming_normal_(self.f8_4.weight)
        nn.init.xavier_uniform_(self.f9.weight, gain=4)
        self.prcm_layout = prcm_layout
        self.f10 = None
        if prcm:
            self.f10 = nn.Conv2d(3 + c3 + c4, c9, 1, bias=False)
            nn.init.xavier_uniform_(self.f10.weight, gain=4)
        self.output_stride = self.backbone.output_stride

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(cam, cam_rv)``: the raw ``fc8`` logits and the refined maps, both
        ``(N, K + 1, ⌈H/8⌉, ⌈W/8⌉)``."""
        side_a, side_b, top = self.feature_stages
        stages = self.backbone.forward_stages(x)
        cam = self.fc8(self.dropout(stages[top]))
        h, w = cam.shape[-2:]
        guide = guide_map(cam)
        stack = torch.cat(
            [
                F.interpolate(x, (h, w), mode="bilinear", align_corners=True),
                F.relu(self.f8_3(stages[side_a].detach())),
                F.relu(self.f8_4(stages[side_b].detach())),
            ],
            dim=1,
        )
        embedding = self.f9(stack)
        cam_rv = pixel_correlation(guide, embedding)
        if self.f10 is not None:
            prcm = pixel_region_correlation(
                guide, stack, F.relu(embedding), self.f10, layout=self.prcm_layout
            )
            cam_rv = cam_rv + prcm * guide
        return cam, cam_rv

    def cams(self, x: torch.Tensor, *, relu: bool = True) -> torch.Tensor:
        """The foreground maps the originals infer from: ``cam_rv`` channels 1..K (≥ 0)."""
        cam_rv = self(x)[1][:, 1:]
        return F.relu(cam_rv) if relu else cam_rv

    def param_groups(self) -> list[dict]:
        """The ResNet-38 recipe's groups (spec §1.1): backbone weights ×1, new layers ×10
        (the originals' bias groups are empty: no layer here has a bias)."""
        new = [self.fc8, self.f8_3, self.f8_4, self.f9] + ([self.f10] if self.f10 else [])
        groups = [
            {
                "name": "backbone",
                "lr_mult": 1.0,
                "params": [p for p in self.backbone.parameters() if p.requires_grad],
            },
            {"name": "head", "lr_mult": 10.0, "params": [p for m in new for p in m.parameters()]},
        ]
        return [g for g in groups if g["params"]]
