"""DeepLab segmentation model: a dilated backbone with a DeepLab-v2 or DeepLab-v3 ASPP head."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.backbones import backbone_from_config
from wsss.models.seg_head import SegmentationNet, classifier

__all__ = ["ASPP", "ASPPv2", "DeepLab", "build_head_v3"]

_DEFAULT_RATES = {"v2": (6, 12, 18, 24), "v3": (6, 12, 18)}


class ASPPv2(nn.Module):
    """DeepLab-v2 ASPP: the sum of parallel 3×3 dilated convs, each mapping features to classes.

    Chen et al., "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous
    Convolution, and Fully Connected CRFs", TPAMI 2017. Weights ~ N(0, 0.01), biases 0.

    Args:
        in_channels: backbone channels.
        num_classes: output channels.
        rates: dilation of each branch.
    """

    def __init__(self, in_channels: int, num_classes: int, rates: Sequence[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r, bias=True) for r in rates
        )
        for conv in self.convs:
            nn.init.normal_(conv.weight, mean=0.0, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` → ``(B, num_classes, h, w)``."""
        return sum(conv(x) for conv in self.convs)


def _conv_bn_relu(conv: nn.Conv2d) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(conv.out_channels), nn.ReLU()]


class _ImagePooling(nn.Sequential):
    """ASPP's image-level branch: global average → 1×1 conv/BN/ReLU → spread back over the map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = super().forward(x)
        return F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """DeepLab-v3 atrous spatial pyramid pooling (Chen et al., arXiv 1706.05587, §3.3): a 1×1
    branch, one 3×3 branch per atrous rate and an image-pooling branch, each conv/BN/ReLU and
    ``channels`` wide, concatenated and projected back to ``channels`` (1×1 conv/BN/ReLU,
    dropout 0.5).

    Parameter names and creation order are torchvision's (``convs.<i>``, ``project``), so its
    checkpoints load and a seed gives the same initial weights as before; written here so that
    building a model does not import torchvision (seconds at every job's start).
    """

    def __init__(self, in_channels: int, rates: Sequence[int], channels: int) -> None:
        super().__init__()

        def conv(cin: int, kernel: int = 1, rate: int = 1) -> nn.Conv2d:
            pad = rate if kernel == 3 else 0
            return nn.Conv2d(cin, channels, kernel, padding=pad, dilation=rate, bias=False)

        branches = [nn.Sequential(*_conv_bn_relu(conv(in_channels)))]
        branches += [nn.Sequential(*_conv_bn_relu(conv(in_channels, 3, r))) for r in rates]
        branches.append(_ImagePooling(nn.AdaptiveAvgPool2d(1), *_conv_bn_relu(conv(in_channels))))
        self.convs = nn.ModuleList(branches)
        self.project = nn.Sequential(
            *_conv_bn_relu(conv(len(branches) * channels)), nn.Dropout(0.5)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, h, w)`` → ``(B, channels, h, w)``."""
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


def build_head_v3(
    in_channels: int, num_classes: int, rates: Sequence[int], channels: int, dropout: float
) -> nn.Sequential:
    """DeepLab-v3 head (Chen et al., arXiv 1706.05587): :class:`ASPP` + 3×3 conv/BN/ReLU +
    dropout + 1×1 classifier (torchvision's ``DeepLabHead`` layout, with configurable width)."""
    return nn.Sequential(
        ASPP(in_channels, list(rates), channels),
        nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        *classifier(channels, num_classes, dropout),
    )


class DeepLab(SegmentationNet):
    """DeepLab-v2 / v3 semantic segmentation network.

    Args:
        num_classes: output classes (21 for VOC incl. background).
        backbone: ``{"name": <BACKBONES key>, **kwargs}``, e.g. ``{"name": "resnet", "depth": 101,
            "output_stride": 8, "frozen_bn": True}``.
        head: ``"v3"`` (ASPP with image pooling, BN, ``aspp_channels`` wide) or ``"v2"`` (sum of
            dilated 3×3 convs straight to classes, DLv2 recipe).
        aspp_channels: width of the v3 head (ignored by v2).
        atrous_rates: ASPP dilations; None = (6, 12, 18) for v3, (6, 12, 18, 24) for v2.
        dropout: dropout before the v3 classifier (ignored by v2, which has none).

    Note:
        In training mode the v3 head's image-pooling branch needs a batch of at least 2
        (BatchNorm over a 1×1 map).

    Attributes:
        build_kwargs: plain-container constructor kwargs (``atrous_rates`` resolved), for
            checkpoints: ``DeepLab(**build_kwargs)`` rebuilds the architecture.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        backbone: Mapping,
        head: str = "v3",
        aspp_channels: int = 256,
        atrous_rates: Sequence[int] | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if head not in _DEFAULT_RATES:
            raise ValueError(f"unknown DeepLab head {head!r}; choose from {sorted(_DEFAULT_RATES)}")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
        rates = [int(r) for r in (_DEFAULT_RATES[head] if atrous_rates is None else atrous_rates)]
        if not rates or any(r < 1 for r in rates):
            raise ValueError(f"atrous_rates must be non-empty positive integers, got {rates}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.build_kwargs = {
            "num_classes": int(num_classes),
            "backbone": copy.deepcopy(dict(backbone)),
            "head": head,
            "aspp_channels": int(aspp_channels),
            "atrous_rates": rates,
            "dropout": float(dropout),
        }
        self.backbone = backbone_from_config(backbone)
        cin = self.backbone.out_channels
        if head == "v2":
            self.head: nn.Module = ASPPv2(cin, num_classes, rates)
        else:
            self.head = build_head_v3(cin, num_classes, rates, aspp_channels, dropout)

    # forward (SegmentationNet): ``{"out": (B, num_classes, H, W)}`` logits, upsampled
    # bilinearly to the input size; parameter groups ``backbone`` (lr_mult 1) and ``head`` (10)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Only the last stage: DeepLab has no auxiliary head (any backbone's ``forward``)."""
        return {"layer4": self.backbone(x)}
