"""CAM classifier: backbone → GAP → bias-free 1×1 conv, and its class activation maps."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.backbones import backbone_from_config

__all__ = ["CAMClassifier"]


class CAMClassifier(nn.Module):
    """Multi-label classifier whose head yields class activation maps (CAM).

    CAM: Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016; the
    recipe (GAP then a bias-free 1×1 conv, optional detach after layer2, lr ×10 on the head) is
    IRN's (Ahn et al., "Weakly Supervised Learning of Instance Segmentation with Inter-pixel
    Relations", CVPR 2019). Because the head is linear without bias, the GAP of the pre-ReLU CAM
    equals the logits.

    Args:
        num_fg_classes: K, number of foreground classes (20 for VOC).
        backbone: ``{"name": <BACKBONES key>, **constructor kwargs}``, e.g.
            ``{"name": "resnet", "depth": 50, "output_stride": 16, "frozen_bn": True}``.
        detach_until: stage whose output is detached (IRN: ``"layer2"``); the parameters of that
            stage and all earlier ones are frozen (``requires_grad=False``). None trains all.
            Needs a backbone with ``freeze_stages(stage)`` and ``forward(x, detach_after=stage)``.

    Attributes:
        build_kwargs: plain-container constructor kwargs; ``CAMClassifier(**build_kwargs)``
            rebuilds the same architecture (stored in checkpoints).
    """

    # IRN's network returns stride-16 maps (`release` CAM inference: no extra step).
    maps_at_input_size = False

    def __init__(
        self, *, num_fg_classes: int, backbone: Mapping, detach_until: str | None = None
    ) -> None:
        super().__init__()
        if int(num_fg_classes) < 1:
            raise ValueError(f"num_fg_classes must be >= 1, got {num_fg_classes!r}")
        self.build_kwargs = {
            "num_fg_classes": int(num_fg_classes),
            "backbone": copy.deepcopy(dict(backbone)),
            "detach_until": detach_until,
        }
        self.backbone = backbone_from_config(backbone)
        self.classifier = nn.Conv2d(self.backbone.out_channels, num_fg_classes, 1, bias=False)
        self.detach_until = detach_until
        if detach_until is not None:
            self.backbone.freeze_stages(detach_until)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(B, C, h, w)`` for normalised images ``x`` ``(B, 3, H, W)``."""
        if self.detach_until is None:
            return self.backbone(x)
        return self.backbone(x, detach_after=self.detach_until)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores ``(B, K)`` (logits for the multi-label soft-margin loss)."""
        pooled = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(pooled).flatten(1)

    def cams(self, x: torch.Tensor, *, relu: bool = True) -> torch.Tensor:
        """Class activation maps ``(B, K, h, w)`` at the backbone stride.

        Args:
            x: ``(B, 3, H, W)`` normalised images.
            relu: apply ReLU (the CAM used downstream); False gives the linear map whose GAP
                equals :meth:`forward`.
        """
        cam = self.classifier(self.features(x))
        return F.relu(cam) if relu else cam

    def param_groups(self) -> list[dict]:
        """Trainable parameters split into ``backbone`` (``lr_mult`` 1) and ``head`` (10) groups."""
        groups = [
            {
                "name": "backbone",
                "lr_mult": 1.0,
                "params": [p for p in self.backbone.parameters() if p.requires_grad],
            },
            {
                "name": "head",
                "lr_mult": 10.0,
                "params": [p for p in self.classifier.parameters() if p.requires_grad],
            },
        ]
        return [g for g in groups if g["params"]]
