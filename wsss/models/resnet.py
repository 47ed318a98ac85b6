"""One parameterised ResNet backbone (depth, output stride, width, stem, frozen BN)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "batchnorm_to_eval",
]


STAGE_NAMES = ("stem", "layer1", "layer2", "layer3", "layer4")


def batchnorm_to_eval(module: nn.Module) -> None:
    """Put every BatchNorm inside ``module`` in eval mode (running statistics), for frozen BN."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs plus a residual (He et al., CVPR 2016); unlike torchvision's, dilatable."""

    expansion = 1

    def __init__(
        self,
        cin: int,
        width: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, width, stride, dilation)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, 1, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (strided, dilated) → 1×1 bottleneck; stride on the 3×3 (ResNet v1.5)."""

    expansion = 4

    def __init__(
        self,
        cin: int,
        width: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_ARCH: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    10: (BasicBlock, (1, 1, 1, 1)),  # tiny, for CPU tests and demos
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
# output stride -> (stride, dilation) of layer3 and layer4
_OS_PLAN = {32: ((2, 1), (2, 1)), 16: ((2, 1), (1, 2)), 8: ((1, 2), (1, 4))}


class ResNet(nn.Module):
    """ResNet (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) without ``fc``.

    Module names match torchvision's ``ResNet`` for the standard stem, so torchvision ImageNet
    state dicts load strictly (see :func:`load_pretrained`). Output stride 16/8 replaces the stride
    of layer4 (and layer3) by dilation as in DeepLab (Chen et al., TPAMI 2017); as in torchvision's
    ``replace_stride_with_dilation``, the first block of a dilated stage keeps the previous stage's
    dilation (mmseg calls this ``contract_dilation``); ``contract_dilation=False`` gives every block
    of a dilated stage that stage's dilation instead, as CCNet does (Huang et al., "CCNet:
    Criss-Cross Attention for Semantic Segmentation", ICCV 2019 / TPAMI 2020).

    Args:
        depth: one of 10 (tiny, [1,1,1,1] basic blocks), 18, 34, 50, 101, 152.
        output_stride: 8, 16 or 32 — the ratio input size / feature size (ceil per stride-2 op;
            with ``stem_pool_ceil`` the max-pool maps an even size n to n/2 + 1).
        base_width: width of the stem and layer1 (64 standard); stage i has ``base_width·2^i``
            bottleneck/basic width.
        deep_stem: three 3×3 convs (stem_width/2, stem_width/2, stem_width) instead of the 7×7
            conv (ResNet-v1c, as used by CCNet/PCAA); its parameters are named ``conv1.0`` …
            ``conv1.6``.
        stem_width: output channels of the stem (default ``base_width``). CCNet's deep-stem
            ResNet (MIT CSAIL's ImageNet weights) uses 128 (convs 64, 64, 128) with
            ``base_width`` 64, so layer1 then starts from 128 channels; open-mmlab's v1c uses 64.
        frozen_bn: every BatchNorm stays in eval mode (running statistics) and its affine
            parameters get ``requires_grad=False`` (IRN recipe).
        multi_grid: per-block dilation multipliers for layer4 (DeepLab-v3); length must equal the
            number of layer4 blocks. The first block then uses ``dilation·multi_grid[0]``.
        dilate: if False, output stride 16/8 sets stride 1 without dilation (IRN's ResNet-50 uses
            strides (2, 2, 2, 1) with no dilation).
        stem_pool_ceil: the stem's 3×3/2 max-pool (padding 1) uses ``ceil_mode=True``, as in
            CCNet's deep-stem ResNet: output size ``⌊n/2⌋ + 1`` instead of ``⌈n/2⌉`` (one more
            row/column for even n).
        contract_dilation: True (default, torchvision/DeepLab): the first block of a dilated stage
            keeps the previous stage's dilation. False: every block of layer3 and layer4 uses its
            stage's dilation (CCNet: 2 in all layer3 blocks, 4 in all layer4 blocks at output
            stride 8). Ignored for layer4 when ``multi_grid`` is given.

    Attributes:
        out_channels: channels of ``layer4``.
        stage_channels: channels of every entry of :meth:`forward_stages`.
    """

    def __init__(
        self,
        depth: int,
        *,
        output_stride: int = 32,
        base_width: int = 64,
        deep_stem: bool = False,
        stem_width: int | None = None,
        frozen_bn: bool = False,
        multi_grid: Sequence[int] | None = None,
        dilate: bool = True,
        stem_pool_ceil: bool = False,
        contract_dilation: bool = True,
    ) -> None:
        super().__init__()
        if depth not in _ARCH:
            raise ValueError(f"ResNet depth {depth!r} not supported; choose from {sorted(_ARCH)}")
        if output_stride not in _OS_PLAN:
            raise ValueError(f"output_stride {output_stride!r} not supported; choose 8, 16 or 32")
        if base_width < 2 or base_width % 2:
            raise ValueError(f"base_width must be an even integer >= 2, got {base_width!r}")
        block, layers = _ARCH[depth]
        if multi_grid is not None and len(multi_grid) != layers[3]:
            raise ValueError(
                f"multi_grid {list(multi_grid)} must have {layers[3]} entries (layer4 blocks)"
            )
        stem = base_width if stem_width is None else stem_width
        if stem < 2 or stem % 2:
            raise ValueError(f"stem_width must be an even integer >= 2, got {stem_width!r}")
        if stem != base_width and not deep_stem:
            raise ValueError("stem_width differs from base_width only with deep_stem: true")
        self.frozen_bn = frozen_bn
        if deep_stem:
            half = stem // 2
            self.conv1 = nn.Sequential(
                _conv3x3(3, half, 2),
                nn.BatchNorm2d(half),
                nn.ReLU(inplace=True),
                _conv3x3(half, half),
                nn.BatchNorm2d(half),
                nn.ReLU(inplace=True),
                _conv3x3(half, stem),
            )
        else:
            self.conv1 = nn.Conv2d(3, stem, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=stem_pool_ceil)

        (s3, d3), (s4, d4) = _OS_PLAN[output_stride]
        self.output_stride = output_stride
        if not dilate:
            d3 = d4 = 1
        self._cin = stem
        widths = [base_width * 2**i for i in range(4)]
        self.layer1 = self._make_layer(block, widths[0], layers[0], 1, 1, 1)
        self.layer2 = self._make_layer(block, widths[1], layers[1], 2, 1, 1)
        # first-block dilation of layer3/layer4: the previous stage's, unless not contracted
        first3, first4 = (1, d3) if contract_dilation else (d3, d4)
        self.layer3 = self._make_layer(block, widths[2], layers[2], s3, d3, first3)
        grid = list(multi_grid) if multi_grid is not None else None
        self.layer4 = self._make_layer(block, widths[3], layers[3], s4, d4, first4, grid)
        self.stage_channels = {"stem": stem}
        for i, w in enumerate(widths):
            self.stage_channels[f"layer{i + 1}"] = w * block.expansion
        self.out_channels = self.stage_channels["layer4"]

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.requires_grad_(False)
            self.train(self.training)

    def _make_layer(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        width: int,
        blocks: int,
        stride: int,
        dilation: int,
        first_dilation: int,
        multi_grid: list[int] | None = None,
    ) -> nn.Sequential:
        cout = width * block.expansion
        downsample = None
        if stride != 1 or self._cin != cout:
            downsample = nn.Sequential(
                nn.Conv2d(self._cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )
        if multi_grid is not None:
            dilations = [dilation * g for g in multi_grid]
        else:
            dilations = [first_dilation] + [dilation] * (blocks - 1)
        mods = [block(self._cin, width, stride, dilations[0], downsample)]
        self._cin = cout
        mods += [block(cout, width, 1, d) for d in dilations[1:]]
        return nn.Sequential(*mods)

    def train(self, mode: bool = True) -> ResNet:
        """Set train/eval mode; with ``frozen_bn`` every BatchNorm is put back in eval mode."""
        super().train(mode)
        if self.frozen_bn:
            batchnorm_to_eval(self)
        return self

    def freeze_stages(self, until: str) -> None:
        """Set ``requires_grad=False`` on every parameter of the stages up to ``until`` inclusive.

        Raises:
            ValueError: if ``until`` is not one of ``stem``, ``layer1`` … ``layer4``.
        """
        if until not in STAGE_NAMES:
            raise ValueError(f"unknown stage {until!r}; choose from {list(STAGE_NAMES)}")
        for name in STAGE_NAMES[: STAGE_NAMES.index(until) + 1]:
            for m in [self.conv1, self.bn1] if name == "stem" else [getattr(self, name)]:
                m.requires_grad_(False)

    def forward_stages(
        self, x: torch.Tensor, *, detach_after: str | None = None
    ) -> dict[str, torch.Tensor]:
        """Run the network and return every stage's output.

        Args:
            x: ``(B, 3, H, W)`` float normalised images.
            detach_after: stage name whose output is detached, so earlier stages get no gradient.

        Returns:
            ``{"stem": (B, C0, ⌈H/2⌉, ⌈W/2⌉) (before max-pool), "layer1": stride 4, "layer2":
            stride 8, "layer3", "layer4"}`` (strides of the last two depend on ``output_stride``;
            sizes from layer1 on grow by one where ``stem_pool_ceil`` rounds up).
        """
        if detach_after is not None and detach_after not in STAGE_NAMES:
            raise ValueError(f"unknown stage {detach_after!r}; choose from {list(STAGE_NAMES)}")
        feats: dict[str, torch.Tensor] = {}
        x = self.relu(self.bn1(self.conv1(x)))
        for name in STAGE_NAMES:
            if name == "layer1":
                x = self.layer1(self.maxpool(x))
            elif name != "stem":
                x = getattr(self, name)(x)
            if name == detach_after:
                x = x.detach()
            feats[name] = x
        return feats

    def forward(self, x: torch.Tensor, *, detach_after: str | None = None) -> torch.Tensor:
        """Return the ``layer4`` features ``(B, out_channels, ⌈H/OS⌉, ⌈W/OS⌉)``."""
        return self.forward_stages(x, detach_after=detach_after)["layer4"]
