"""EPS / SMAF classifier: foreground *and* background logits, background last.

EPS: Lee et al., "Railroading Labels: Explicit Pseudo-pixel Supervision for Weakly Supervised
Semantic Segmentation", CVPR 2021 (algorithms.md §1.2(d)); SMAF (arXiv 2305.05841, §2.3) adds a
128-d embedding (1×1 conv, BN, ReLU) before the classifier, whose features its prototype
denoising uses.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.backbones import backbone_from_config, backbone_head_groups

__all__ = ["EPSNet"]


class EPSNet(nn.Module):
    """Backbone → Dropout2d → [1×1 conv → BN → ReLU] → bias-free 1×1 conv to K + 1 channels.

    Channels ``0..K-1`` are the foreground classes, channel ``K`` the background (EPS order).

    Args:
        num_fg_classes: K.
        backbone: ``{"name": <BACKBONES key>, **kwargs}``.
        embed_channels: width of SMAF's embedding (128); None = EPS's head on the backbone.
        dropout: Dropout2d rate before the head (the ResNet-38 CAM nets use 0.5; 0 = none).
        frozen_embed_bn: keep the embedding's BN in eval mode at its initial statistics — what
            the released SMAF does without meaning to (ResNet-38's ``train()`` freezes every BN).

    Attributes:
        build_kwargs: constructor kwargs (stored in checkpoints).
    """

    # EPS's released network returns stride-8 maps (`release` CAM inference: no extra step).
    maps_at_input_size = False

    def __init__(
        self,
        *,
        num_fg_classes: int,
        backbone: Mapping,
        embed_channels: int | None = None,
        dropout: float = 0.0,
        frozen_embed_bn: bool = False,
    ) -> None:
        super().__init__()
        if int(num_fg_classes) < 1:
            raise ValueError(f"num_fg_classes must be >= 1, got {num_fg_classes!r}")
        self.build_kwargs = {
            "num_fg_classes": int(num_fg_classes),
            "backbone": copy.deepcopy(dict(backbone)),
            "embed_channels": embed_channels,
            "dropout": float(dropout),
            "frozen_embed_bn": bool(frozen_embed_bn),
        }
        self.num_fg_classes = int(num_fg_classes)
        self.backbone = backbone_from_config(backbone)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        width = self.backbone.out_channels
        if embed_channels:
            self.embed = nn.Sequential(
                nn.Conv2d(width, embed_channels, 1, bias=False),
                nn.BatchNorm2d(embed_channels),
                nn.ReLU(inplace=True),
            )
            nn.init.xavier_uniform_(self.embed[0].weight)
            width = embed_channels
        else:
            self.embed = None
        self.frozen_embed_bn = bool(frozen_embed_bn)
        self.classifier = nn.Conv2d(width, num_fg_classes + 1, 1, bias=False)
        nn.init.xavier_uniform_(self.classifier.weight)

    def train(self, mode: bool = True) -> EPSNet:
        super().train(mode)
        if self.embed is not None and self.frozen_embed_bn:
            self.embed[1].eval()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"logits": (B, K+1, h, w) map, "scores": (B, K+1) its GAP, "features": the map
        the classifier reads (the embedding, or the backbone output)}``."""
        features = self.dropout(self.backbone(x))
        if self.embed is not None:
            features = self.embed(features)
        logits = self.classifier(features)
        return {"logits": logits, "scores": logits.mean(dim=(2, 3)), "features": features}

    def cams(self, x: torch.Tensor) -> torch.Tensor:
        """Foreground softmax maps ``(B, K, h, w)``: the softmax over all K + 1 logits, background
        channel dropped (EPS/SMAF inference, algorithms.md §1.3(d)); float32 under autocast."""
        return F.softmax(self(x)["logits"].float(), dim=1)[:, : self.num_fg_classes]

    def param_groups(self) -> list[dict]:
        """``backbone`` (lr ×1) and ``head`` (embedding + classifier, ×10) parameter groups."""
        return backbone_head_groups(self.backbone, self.embed, self.classifier)
