"""ResNet-38 ("wide ResNet-38d"), the backbone of PSA, SEAM, CPN, EPS and SMAF.

Wu, Shen & van den Hengel, "Wider or Deeper: Revisiting the ResNet Model for Visual Recognition",
Pattern Recognition 2019; the output-stride-8 variant with dilated b5–b7 used by Ahn & Kwak (PSA,
CVPR 2018) and its successors (algorithms.md §1.1). Module and parameter names follow the PyTorch
conversion of the MXNet ImageNet weights (``conv1a``, ``b2`` … ``b7``, ``bn7``; blocks with
``bn_branch2a``, ``conv_branch2a``, …), so a converted ``.pth`` loads strictly with
:func:`wsss.models.backbones.load_pretrained`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.resnet import batchnorm_to_eval

__all__ = ["ResNet38", "PreActBlock", "PreActBottleneck"]


class PreActBlock(nn.Module):
    """Pre-activation block: BN-ReLU → 3×3 (strided, ``first_dilation``) → BN-ReLU → 3×3.

    The projection shortcut (``conv_branch1``, 1×1) takes the BN-ReLU'd input; an identity
    shortcut takes the raw input. :meth:`forward` also returns that BN-ReLU'd input, which is
    what ResNet-38 exposes as its ``conv4``/``conv5`` side outputs.
    """

    def __init__(
        self,
        cin: int,
        mid: int,
        cout: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        first_dilation: int | None = None,
    ) -> None:
        super().__init__()
        first = dilation if first_dilation is None else first_dilation
        self.bn_branch2a = nn.BatchNorm2d(cin)
        self.conv_branch2a = nn.Conv2d(
            cin, mid, 3, stride, padding=first, dilation=first, bias=False
        )
        self.bn_branch2b1 = nn.BatchNorm2d(mid)
        self.conv_branch2b1 = nn.Conv2d(
            mid, cout, 3, padding=dilation, dilation=dilation, bias=False
        )
        self.project = not (cin == cout and stride == 1)
        if self.project:
            self.conv_branch1 = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = F.relu(self.bn_branch2a(x))
        shortcut = self.conv_branch1(pre) if self.project else x
        out = self.conv_branch2a(pre)
        out = self.conv_branch2b1(F.relu(self.bn_branch2b1(out)))
        return shortcut + out, pre


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck of b6/b7: 1×1 (cout/4) → dilated 3×3 (cout/2) → 1×1 (cout),
    dropout before the last two convs, always a 1×1 projection shortcut on the BN-ReLU'd input."""

    def __init__(
        self, cin: int, cout: int, *, stride: int = 1, dilation: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.bn_branch2a = nn.BatchNorm2d(cin)
        self.conv_branch2a = nn.Conv2d(cin, cout // 4, 1, stride, bias=False)
        self.bn_branch2b1 = nn.BatchNorm2d(cout // 4)
        self.dropout_2b1 = nn.Dropout2d(dropout)
        self.conv_branch2b1 = nn.Conv2d(
            cout // 4, cout // 2, 3, padding=dilation, dilation=dilation, bias=False
        )
        self.bn_branch2b2 = nn.BatchNorm2d(cout // 2)
        self.dropout_2b2 = nn.Dropout2d(dropout)
        self.conv_branch2b2 = nn.Conv2d(cout // 2, cout, 1, bias=False)
        self.conv_branch1 = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = F.relu(self.bn_branch2a(x))
        shortcut = self.conv_branch1(pre)
        out = self.conv_branch2a(pre)
        out = self.conv_branch2b1(self.dropout_2b1(F.relu(self.bn_branch2b1(out))))
        out = self.conv_branch2b2(self.dropout_2b2(F.relu(self.bn_branch2b2(out))))
        return shortcut + out, pre


# (name, kind, cin, mid, cout, stride, dilation, first_dilation) at width 1; b6/b7: mid unused
_LAYOUT = (
    [("b2", "block", 64, 128, 128, 2, 1, None)]
    + [(f"b2_{i}", "block", 128, 128, 128, 1, 1, None) for i in (1, 2)]
    + [("b3", "block", 128, 256, 256, 2, 1, None)]
    + [(f"b3_{i}", "block", 256, 256, 256, 1, 1, None) for i in (1, 2)]
    + [("b4", "block", 256, 512, 512, 2, 1, None)]
    + [(f"b4_{i}", "block", 512, 512, 512, 1, 1, None) for i in range(1, 6)]
    + [("b5", "block", 512, 512, 1024, 1, 2, 1)]
    + [(f"b5_{i}", "block", 1024, 512, 1024, 1, 2, None) for i in (1, 2)]
    + [
        ("b6", "bottleneck", 1024, 0, 2048, 1, 4, None),
        ("b7", "bottleneck", 2048, 0, 4096, 1, 4, None),
    ]
)
_DROPOUT = {"b6": 0.3, "b7": 0.5}
# The stem the originals never train (``not_training``: conv1a, b2, b2_1, b2_2).
_STEM = ("conv1a", "b2", "b2_1", "b2_2")


class ResNet38(nn.Module):
    """Wide ResNet-38 with output stride 8 (b5 dilation 2, b6/b7 dilation 4), pre-activation.

    Args:
        width: channel multiplier (1 = the ImageNet network: 64 … 4096 channels, ~105 M
            parameters). Smaller values give the same topology for CPU tests and the synthetic
            benchmark; every width is rounded to a multiple of 4 (the bottlenecks divide by 4).
        frozen_bn: every BatchNorm stays in eval mode with frozen affine parameters, as in all
            ResNet-38 WSSS codebases (they fine-tune with batch 4–16). From-scratch training
            needs ``False``.
        frozen_stem: ``conv1a``, ``b2``, ``b2_1``, ``b2_2`` get ``requires_grad=False`` (the
            originals' ``not_training``).
        dropout: Dropout2d rates inside b6 and b7 (0.3, 0.5 in the originals).

    Attributes:
        out_channels: channels of ``conv6`` (4096·width).
        stage_channels: ``{"conv4", "conv5", "conv6"}`` channel counts.
        output_stride: 8.
    """

    output_stride = 8

    def __init__(
        self,
        *,
        width: float = 1.0,
        frozen_bn: bool = True,
        frozen_stem: bool = True,
        dropout: tuple[float, float] = (0.3, 0.5),
    ) -> None:
        super().__init__()
        if not 0 < width <= 1:
            raise ValueError(f"width must be in (0, 1], got {width!r}")
        if len(dropout) != 2 or not all(0 <= p < 1 for p in dropout):
            raise ValueError(f"dropout must be two rates in [0, 1), got {dropout!r}")

        def ch(n: int) -> int:
            return max(4, 4 * round(n * width / 4))

        self.frozen_bn = frozen_bn
        self.conv1a = nn.Conv2d(3, ch(64), 3, padding=1, bias=False)
        rates = dict(zip(("b6", "b7"), dropout, strict=True))
        for name, kind, cin, mid, cout, stride, dilation, first in _LAYOUT:
            if kind == "block":
                block = PreActBlock(
                    ch(cin),
                    ch(mid),
                    ch(cout),
                    stride=stride,
                    dilation=dilation,
                    first_dilation=first,
                )
            else:
                block = PreActBottleneck(
                    ch(cin), ch(cout), stride=stride, dilation=dilation, dropout=rates[name]
                )
            self.add_module(name, block)
        self.bn7 = nn.BatchNorm2d(ch(4096))
        self.stage_channels = {"conv4": ch(512), "conv5": ch(1024), "conv6": ch(4096)}
        self.out_channels = ch(4096)
        self._names = [row[0] for row in _LAYOUT]

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if frozen_stem:
            for name in _STEM:
                getattr(self, name).requires_grad_(False)
        if frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> ResNet38:
        """Set train/eval mode; with ``frozen_bn`` every BatchNorm is put back in eval mode."""
        super().train(mode)
        if self.frozen_bn:
            batchnorm_to_eval(self)
        return self

    def forward_stages(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"conv4": BN-ReLU input of b5, "conv5": BN-ReLU input of b6, "conv6": BN-ReLU of
        b7's output}``, all at stride 8 (⌈·/8⌉ for sizes that are not multiples of 8)."""
        feats: dict[str, torch.Tensor] = {}
        x = self.conv1a(x)
        for name in self._names:
            x, pre = getattr(self, name)(x)
            if name == "b5":
                feats["conv4"] = pre
            elif name == "b6":
                feats["conv5"] = pre
        feats["conv6"] = F.relu(self.bn7(x))
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``conv6`` ``(B, out_channels, ⌈H/8⌉, ⌈W/8⌉)``."""
        return self.forward_stages(x)["conv6"]
