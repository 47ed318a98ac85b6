"""The plumbing the segmentation networks share, so that a network is only its head's idea (as
mmsegmentation's ``DecodeHead`` / ``EncoderDecoder`` split it): the backbone's stage features in,
a main head on ``layer4``, an optional deep-supervision (DSN) head on ``layer3``, logits
upsampled to the input size, and the backbone/head optimizer groups."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.backbones import backbone_head_groups

__all__ = ["SegmentationNet", "conv_head", "classifier", "upsample"]


def upsample(logits: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to ``size`` with ``align_corners=False`` (every model here)."""
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def classifier(channels: int, num_classes: int, dropout: float) -> list[nn.Module]:
    """The last two layers of every head: Dropout2d, then a 1×1 conv (bias) to the classes."""
    return [nn.Dropout2d(dropout), nn.Conv2d(channels, num_classes, 1)]


def conv_head(
    layers: Iterable[nn.Module], channels: int, num_classes: int, dropout: float
) -> nn.Sequential:
    """``layers`` (a conv block ending ``channels`` wide) + :func:`classifier`: a DSN head, or
    the last stage of a main head."""
    return nn.Sequential(*layers, *classifier(channels, num_classes, dropout))


class SegmentationNet(nn.Module):
    """Base of the segmentation networks: ``forward(x)`` → ``{"out": logits}`` at the input
    size, in training mode plus the head's extra outputs (:meth:`decode`) and ``"aux"`` (the DSN
    head's logits, same size) when there is an auxiliary head.

    A subclass creates, in this order (creation order fixes the parameter order and the initial
    weights a seed gives), ``self.backbone``, ``self.head`` and ``self.aux_head`` (a module on
    the ``layer3`` features, or None), and overrides what its idea changes: :meth:`decode` (a head
    with more outputs), :meth:`features` (a head that reads only ``layer4``) or
    :meth:`align_input` (a head that needs particular input sizes).
    """

    backbone: nn.Module
    head: nn.Module
    aux_head: nn.Module | None

    def __init__(self) -> None:
        super().__init__()
        # an instance attribute, not a class one: a class attribute would shadow the submodule
        # that nn.Module keeps in _modules once a subclass assigns one
        self.aux_head = None

    def align_input(self, x: torch.Tensor) -> torch.Tensor:
        """The images the backbone sees (default: ``x`` itself)."""
        return x

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The backbone's stage outputs (``layer3``, ``layer4``, ...)."""
        return self.backbone.forward_stages(x)

    def decode(self, feats: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """The main head's logits on ``layer4`` and its extra training outputs (none here)."""
        return self.head(feats["layer4"]), {}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | tuple[torch.Tensor, ...]]:
        """Segment normalised images ``x`` ``(B, 3, H, W)``: ``{"out": (B, K, H, W)}``; in
        training mode also the extra outputs of :meth:`decode` and ``"aux"``."""
        size = x.shape[-2:]
        feats = self.features(self.align_input(x))
        logits, extras = self.decode(feats)
        outputs: dict[str, torch.Tensor | tuple[torch.Tensor, ...]] = {
            "out": upsample(logits, size)
        }
        if self.training:
            outputs.update(extras)
            if self.aux_head is not None:
                outputs["aux"] = upsample(self.aux_head(feats["layer3"]), size)
        return outputs

    def param_groups(self) -> list[dict]:
        """Trainable parameters split into ``backbone`` (``lr_mult`` 1) and ``head`` (10)
        groups; the head group holds the main head, then the auxiliary head."""
        return backbone_head_groups(self.backbone, self.head, self.aux_head)
