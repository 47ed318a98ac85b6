"""PCAA: a dilated ResNet with a partial class activation attention head and a DSN aux head.

Liu et al., "Partial Class Activation Attention for Semantic Segmentation", CVPR 2022. The
attention maths (partial CAM, local and global class centres, class attention) lives in
:mod:`wsss.models.pcaa_attention`; this module assembles the head and the network (spec §2.4).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.backbones import backbone_from_config
from wsss.models.pcaa_attention import CAAM, conv_bn_relu
from wsss.models.seg_head import SegmentationNet, conv_head

__all__ = ["PCAA", "CAAHead", "normalize_bins"]


def normalize_bins(bins: Sequence[int | Sequence[int]]) -> list[list[int]]:
    """``[4, (2, 3)]`` → ``[[4, 4], [2, 3]]``: one ``[b_h, b_w]`` grid per CAAM.

    Raises:
        ValueError: if ``bins`` is empty or a grid is not one or two positive integers.
    """
    out = []
    for b in bins:
        pair = [int(b), int(b)] if isinstance(b, int) else [int(v) for v in b]
        if len(pair) != 2 or min(pair) < 1:
            raise ValueError(f"each bin grid must be an int or (b_h, b_w) >= 1, got {b!r}")
        out.append(pair)
    if not out:
        raise ValueError("bins must name at least one bin grid, e.g. [[4, 4]]")
    return out


class CAAHead(nn.Module):
    """PCAA's class activation attention head (spec §2.4).

    ``conva`` (3×3, C → channels, BN, ReLU) → one :class:`CAAM` per bin grid, chained →
    ``convb`` (3×3, channels → channels, BN, ReLU) → ``classifier``: concat[convb output,
    input] → 3×3 conv (channels + C → channels, BN, ReLU) → Dropout2d → 1×1 conv (bias) to K.

    Args:
        in_channels: backbone channels C (2048 for ResNet-50/101).
        channels: head width (512).
        num_classes: K.
        bins: ``[[b_h, b_w], ...]``, one CAAM each.
        attention_channels: query/key/value width of every CAAM (C/2 = 256 in the paper).
        cam_dropout: Dropout2d before each partial-CAM classifier (0.1).
        dropout: Dropout2d before the final classifier (0 = the original's default).
        scale_attention: scale the class affinities by ``attention_channels^-1/2``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_classes: int,
        *,
        bins: Sequence[Sequence[int]],
        attention_channels: int,
        cam_dropout: float,
        dropout: float,
        scale_attention: bool,
    ) -> None:
        super().__init__()
        self.conva = conv_bn_relu(in_channels, channels, 3)
        self.caams = nn.ModuleList(
            CAAM(
                channels,
                num_classes,
                tuple(b),
                attention_channels=attention_channels,
                cam_dropout=cam_dropout,
                scale_attention=scale_attention,
            )
            for b in bins
        )
        self.convb = conv_bn_relu(channels, channels, 3)
        self.classifier = conv_head(
            [conv_bn_relu(channels + in_channels, channels, 3)], channels, num_classes, dropout
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(N, C, h, w)`` features → ``(N, K, h, w)`` logits and one ``(N, K, b_h, b_w)``
        bin-logit map per CAAM."""
        y = self.conva(x)
        bin_logits = []
        for caam in self.caams:
            y, logits = caam(y)
            bin_logits.append(logits)
        return self.classifier(torch.cat([self.convb(y), x], dim=1)), bin_logits


class PCAA(SegmentationNet):
    """PCAA segmentation network (Liu et al., "Partial Class Activation Attention for Semantic
    Segmentation", CVPR 2022): :class:`CAAHead` on layer4, DSN auxiliary head on layer3.

    The partial CAMs need feature maps divisible by every bin grid, so the input is resized
    (bilinear, ``align_corners=False``) up to the next multiple of ``size_divisor`` when needed
    and the logits are resized back to the input size — what the original's ``predict_whole``
    did at test time (``--os 32``); training crops that are multiples already pass unchanged.
    BatchNorm replaces the original's SyncBatchNorm (the same on one device).

    Args:
        num_classes: output classes K (19 Cityscapes, 150 ADE20K, 21 VOC).
        backbone: ``{"name": <BACKBONES key>, **kwargs}`` offering ``forward_stages`` with
            ``"layer3"`` and ``"layer4"``. PCAA proper (ResNet-v1c, OS 8, every block of a
            dilated stage dilated): ``{"name": "resnet", "depth": 50, "deep_stem": True,
            "output_stride": 8, "contract_dilation": False}``, plus ``"depth": 101,
            "multi_grid": [1, 2, 4]`` for ADE20K.
        bins: bin grids, one CAAM each, ints or ``(b_h, b_w)`` (scripts: ``[[4, 4]]``).
        channels: head width (512).
        attention_channels: CAAM query/key/value width; None = ``channels // 2``.
        cam_dropout: Dropout2d before each partial-CAM classifier (0.1).
        dropout: Dropout2d before both final classifiers (0; the original's ``--dropout``
            flag, off in its scripts, sets 0.1).
        aux_channels: width of the DSN head (256); None = no auxiliary head.
        scale_attention: apply the affinity scale ``attention_channels^-1/2`` that the
            original defines but never uses (default False, faithful).
        size_divisor: input sides are resized up to a multiple of this; None = the backbone's
            ``output_stride`` × the least common multiple of all bin sides (32 for OS 8, 4×4).

    Attributes:
        build_kwargs: plain-container constructor kwargs: ``PCAA(**build_kwargs)`` rebuilds the
            architecture.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        backbone: Mapping,
        bins: Sequence[int | Sequence[int]] = ((4, 4),),
        channels: int = 512,
        attention_channels: int | None = None,
        cam_dropout: float = 0.1,
        dropout: float = 0.0,
        aux_channels: int | None = 256,
        scale_attention: bool = False,
        size_divisor: int | None = None,
    ) -> None:
        super().__init__()
        grids = normalize_bins(bins)
        attention_channels = channels // 2 if attention_channels is None else attention_channels
        for name, value in (
            ("num_classes", num_classes),
            ("channels", channels),
            ("attention_channels", attention_channels),
            ("aux_channels", 1 if aux_channels is None else aux_channels),
            ("size_divisor", 1 if size_divisor is None else size_divisor),
        ):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
        for name, value in (("cam_dropout", cam_dropout), ("dropout", dropout)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        self.build_kwargs = {
            "num_classes": int(num_classes),
            "backbone": copy.deepcopy(dict(backbone)),
            "bins": grids,
            "channels": int(channels),
            "attention_channels": int(attention_channels),
            "cam_dropout": float(cam_dropout),
            "dropout": float(dropout),
            "aux_channels": None if aux_channels is None else int(aux_channels),
            "scale_attention": bool(scale_attention),
            "size_divisor": None if size_divisor is None else int(size_divisor),
        }
        self.backbone = backbone_from_config(backbone)
        if size_divisor is None:
            stride = getattr(self.backbone, "output_stride", None)
            if stride is None:
                raise ValueError("the backbone has no output_stride; give size_divisor")
            size_divisor = int(stride) * math.lcm(*(v for g in grids for v in g))
        self.size_divisor = int(size_divisor)
        feats = self.backbone.stage_channels
        self.head = CAAHead(
            feats["layer4"],
            int(channels),
            int(num_classes),
            bins=grids,
            attention_channels=int(attention_channels),
            cam_dropout=float(cam_dropout),
            dropout=float(dropout),
            scale_attention=bool(scale_attention),
        )
        self.aux_head = None
        if aux_channels is not None:
            self.aux_head = conv_head(
                [conv_bn_relu(feats["layer3"], int(aux_channels), 3)],
                int(aux_channels),
                int(num_classes),
                float(dropout),
            )

    # forward (SegmentationNet): ``{"out": (N, K, H, W)}``; in training mode also
    # ``"bin_logits"`` (one ``(N, K, b_h, b_w)`` pre-sigmoid partial-CAM bin score map per CAAM,
    # for the focal loss) and ``"aux"`` (only with an aux head). The parameter groups hold the
    # CAA and DSN heads in ``head``; the original trained every group at the base lr: pass
    # ``lr_mults={"backbone": 1, "head": 1}`` to reproduce it.

    def align_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` resized up to sides that are multiples of ``size_divisor`` (when they are not)."""
        size, d = x.shape[-2:], self.size_divisor
        aligned = (math.ceil(size[0] / d) * d, math.ceil(size[1] / d) * d)
        if aligned != tuple(size):
            x = F.interpolate(x, size=aligned, mode="bilinear", align_corners=False)
        return x

    def decode(self, feats: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        logits, bin_logits = self.head(feats["layer4"])
        return logits, {"bin_logits": tuple(bin_logits)}
