"""CCNet: a dilated ResNet with a recurrent criss-cross attention head and a DSN auxiliary head.

Huang et al., "CCNet: Criss-Cross Attention for Semantic Segmentation", ICCV 2019 / TPAMI 2020.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.backbones import backbone_from_config, backbone_head_groups
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
        self.bottleneck = nn.Sequential(
            *conv_bn_leaky(in_channels + inter_channels, inter_channels, bias=False),
            nn.Dropout2d(dropout),
            nn.Conv2d(inter_channels, num_classes, 1),
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
    return nn.Sequential(
        *conv_bn_leaky(in_channels, channels, bias=True),
        nn.Dropout2d(dropout),
        nn.Conv2d(channels, num_classes, 1),
    )


class CCNet(nn.Module):
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

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Segment normalised images ``x`` ``(B, 3, H, W)``.

        Returns:
            ``{"out": (B, num_classes, H, W)}`` float logits of the RCCA head, upsampled
            bilinearly to the input size with ``align_corners=False`` like every model here (the
            original used ``align_corners=True``); in training mode also ``"aux"``: the DSN
            head's logits, upsampled the same way.
        """
        feats = self.backbone.forward_stages(x)
        size = x.shape[-2:]
        outputs = {"out": _upsample(self.head(feats["layer4"]), size)}
        if self.training:
            outputs["aux"] = _upsample(self.aux_head(feats["layer3"]), size)
        return outputs

    def param_groups(self) -> list[dict]:
        """Trainable parameters split into ``backbone`` (``lr_mult`` 1) and ``head`` (10) groups;
        the head group holds both the RCCA head and the DSN head."""
        return backbone_head_groups(self.backbone, self.head, self.aux_head)


def _upsample(logits: torch.Tensor, size: torch.Size) -> torch.Tensor:
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
