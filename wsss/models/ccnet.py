"""CCNet: a dilated ResNet with a recurrent criss-cross attention head and a DSN auxiliary head.

Huang et al., "CCNet: Criss-Cross Attention for Semantic Segmentation", ICCV 2019 / TPAMI 2020.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from wsss.models.backbones import backbone_from_config
from wsss.models.seg_head import SegmentationNet, conv_head
from wsss.ops import RCCA

__all__ = ["CCNet", "RCCAHead", "build_dsn_head"]

LEAKY_SLOPE = 0.01  # InPlaceABN's default leaky-ReLU slope


def conv_bn_leaky(cin: int, cout: int, *, bias: bool) -> list[nn.Module]:
    """3×3 conv (padding 1) + BatchNorm + LeakyReLU(0.01): CCNet's conv + InPlaceABNSync."""
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=bias),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
    ]


class RCCAHead(nn.Module):
    """CCNet's RCCA module and bottleneck (CCNet §3.2; spec §2.5).

    ``conva`` (3×3, C → inter) → R passes of one shared criss-cross attention block →
    ``convb`` (3×3, inter → inter) → ``bottleneck``: concat[input, convb output] → 3×3 conv
    (C + inter → inter) → dropout → 1×1 conv to the classes (bias). The 3×3 convs have no bias and
    are followed by BatchNorm + LeakyReLU(0.01).

    Args:
        in_channels: backbone channels C (2048 for ResNet-101).
        inter_channels: width of the attention branch (512).
        num_classes: output channels.
        reduction: C' = inter / reduction channels of the attention's query and key.
        recurrence: attention passes R (2 in the paper).
        dropout: Dropout2d probability before the classifier.
        impl: criss-cross attention path (``"auto"``, ``"torch"``, ``"cuda"``).
    """

    def __init__(
        self,
        in_channels: int,
        inter_channels: int,
        num_classes: int,
        *,
        reduction: int,
        recurrence: int,
        dropout: float,
        impl: str,
    ) -> None:
        super().__init__()
        self.conva = nn.Sequential(*conv_bn_leaky(in_channels, inter_channels, bias=False))
        self.rcca = RCCA(inter_channels, reduction, recurrence=recurrence, impl=impl)
        self.convb = nn.Sequential(*conv_bn_leaky(inter_channels, inter_channels, bias=False))
        self.bottleneck = conv_head(
            conv_bn_leaky(in_channels + inter_channels, inter_channels, bias=False),
            inter_channels,
            num_classes,
            dropout,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` features → ``(B, num_classes, h, w)`` logits."""
        context = self.convb(self.rcca(self.conva(x)))
        return self.bottleneck(torch.cat([x, context], dim=1))


def build_dsn_head(
    in_channels: int, channels: int, num_classes: int, dropout: float
) -> nn.Sequential:
    """CCNet's deep-supervision (DSN) head on layer3: 3×3 conv (bias) + BatchNorm +
    LeakyReLU(0.01) + Dropout2d + 1×1 conv to the classes (spec §2.5)."""
    return conv_head(
        conv_bn_leaky(in_channels, channels, bias=True), channels, num_classes, dropout
    )


class CCNet(SegmentationNet):
    """CCNet (Huang et al., "CCNet: Criss-Cross Attention for Semantic Segmentation", ICCV 2019 /
    TPAMI 2020): RCCA head on layer4, DSN auxiliary head on layer3.

    The original's InPlaceABNSync (synchronised BatchNorm fused with a leaky ReLU of slope 0.01)
    is replaced by ``BatchNorm2d`` + ``LeakyReLU(0.01)`` — numerically the same on one device;
    cross-device synchronised BatchNorm is not implemented here. New layers keep PyTorch's default
    initialisation, as in the original; the attention's γ starts at 0 (the head starts without
    attention and learns how much to use).

    Args:
        num_classes: output classes (21 for VOC incl. background).
        backbone: ``{"name": <BACKBONES key>, **kwargs}``; it must offer ``forward_stages`` (with
            ``"layer3"`` and ``"layer4"``) and ``stage_channels``. CCNet proper: ``{"name":
            "resnet", "depth": 101, "deep_stem": True, "output_stride": 8, "stem_pool_ceil":
            True, "contract_dilation": False, "multi_grid": [1, 1, 1]}``.
        recurrence: criss-cross attention passes R (2 in the paper). Required: the original
            training script's default of 0 silently disabled attention.
        inter_channels: width of the RCCA head (512).
        reduction: query/key channel reduction of the attention (8).
        dropout: Dropout2d before both classifiers (0.1).
        aux_channels: width of the DSN head (512).
        cca_impl: criss-cross attention path, ``"auto"``, ``"torch"`` or ``"cuda"``.

    Attributes:
        build_kwargs: plain-container constructor kwargs: ``CCNet(**build_kwargs)`` rebuilds the
            architecture.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        backbone: Mapping,
        recurrence: int,
        inter_channels: int = 512,
        reduction: int = 8,
        dropout: float = 0.1,
        aux_channels: int = 512,
        cca_impl: str = "auto",
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_classes", num_classes),
            ("inter_channels", inter_channels),
            ("aux_channels", aux_channels),
            ("recurrence", recurrence),
        ):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.build_kwargs = {
            "num_classes": int(num_classes),
            "backbone": copy.deepcopy(dict(backbone)),
            "recurrence": int(recurrence),
            "inter_channels": int(inter_channels),
            "reduction": int(reduction),
            "dropout": float(dropout),
            "aux_channels": int(aux_channels),
            "cca_impl": str(cca_impl),
        }
        self.backbone = backbone_from_config(backbone)
        channels = self.backbone.stage_channels
        self.head = RCCAHead(
            channels["layer4"],
            int(inter_channels),
            int(num_classes),
            reduction=int(reduction),
            recurrence=int(recurrence),
            dropout=float(dropout),
            impl=cca_impl,
        )
        self.aux_head = build_dsn_head(
            channels["layer3"], int(aux_channels), int(num_classes), float(dropout)
        )

    # forward (SegmentationNet): ``{"out": (B, K, H, W)}``, the RCCA head's logits upsampled
    # bilinearly with ``align_corners=False`` like every model here (the original used
    # ``align_corners=True``); in training mode also ``"aux"``, the DSN head's. The ``head``
    # parameter group holds both heads.
