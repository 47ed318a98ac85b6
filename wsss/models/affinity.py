"""Networks whose outputs define pixel affinities: PSA's AffinityNet and IRN's boundary branch.

* AffinityNet: Ahn & Kwak, "Learning Pixel-level Semantic Affinity with Image-level Supervision",
  CVPR 2018 (also SEAM's, Wang et al., CVPR 2020) — features f whose pairwise affinity is
  exp(−mean_k |f_k(i) − f_k(j)|) (``wsss.refine.random_walk.feature_affinities``).
* BoundaryNet: the boundary-detection branch of IRNet, Ahn, Cho & Kwak, "Weakly Supervised Learning
  of Instance Segmentation with Inter-pixel Relations", CVPR 2019 — a class-agnostic boundary map B
  whose pairwise affinity is 1 − max of B on the segment between the two pixels
  (``wsss.refine.random_walk.boundary_affinities``).

See algorithms.md §1.6.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.backbones import backbone_from_config, backbone_head_groups

__all__ = ["AffinityNet", "BoundaryNet"]

# PSA's analogues of ResNet-38's conv4 / conv5 / conv6 (all stride 8) in our ResNet at OS 8.
_AFFINITY_STAGES = ("layer2", "layer3", "layer4")
# IRN's x1..x5: max-pooled stem (x1) and layer1..layer4.
_BOUNDARY_STAGES = ("pooled_stem", "layer1", "layer2", "layer3", "layer4")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class AffinityNet(nn.Module):
    """PSA's AffinityNet: a stride-8 backbone and a feature head for semantic affinities.

    Ahn & Kwak, CVPR 2018. The head maps three stride-8 stages to ``feature_channels`` each with a
    bias-free 1×1 conv + ELU (PSA's f8_3, f8_4, f8_5 on ResNet-38's conv4, conv5, conv6; here
    ``layer2``, ``layer3``, ``layer4`` of a ResNet at output stride 8), concatenates them and
    applies a bias-free 1×1 conv + ELU (f9) to ``out_channels``. Initialisation as PSA:
    Kaiming-normal (fan-in, gain √2) for the stage convs, Xavier-uniform with gain 4 for the last.

    Deliberate difference: PSA's backbone is ResNet-38 initialised from ImageNet weights with its
    BatchNorm and first blocks frozen; here any registry backbone at output stride 8 (freeze BN
    with ``"frozen_bn": True`` in its config). The affinity itself is computed outside the model
    from the returned features.

    Args:
        backbone: ``{"name": <BACKBONES key>, **constructor kwargs}``; ``output_stride`` must be 8
            (e.g. ``{"name": "resnet", "depth": 50, "output_stride": 8, "frozen_bn": True}``).
        feature_channels: output channels of the three stage convs (PSA: 64, 128, 256).
        out_channels: channels of the returned features (PSA: 448).

    Attributes:
        build_kwargs: plain-container constructor kwargs; ``AffinityNet(**build_kwargs)``
            rebuilds the same architecture (stored in checkpoints).
    """

    def __init__(
        self,
        *,
        backbone: Mapping,
        feature_channels: Sequence[int] = (64, 128, 256),
        out_channels: int = 448,
    ) -> None:
        super().__init__()
        channels = [_positive_int(c, "feature_channels entries") for c in feature_channels]
        if len(channels) != len(_AFFINITY_STAGES):
            raise ValueError(
                f"feature_channels needs {len(_AFFINITY_STAGES)} entries (one per stage "
                f"{list(_AFFINITY_STAGES)}), got {list(feature_channels)}"
            )
        out_channels = _positive_int(out_channels, "out_channels")
        self.build_kwargs = {
            "backbone": copy.deepcopy(dict(backbone)),
            "feature_channels": channels,
            "out_channels": out_channels,
        }
        self.backbone = backbone_from_config(backbone)
        stride = getattr(self.backbone, "output_stride", None)
        if stride != 8:
            raise ValueError(f"AffinityNet needs a backbone with output_stride 8, got {stride!r}")
        stage_channels = self.backbone.stage_channels
        self.stage_convs = nn.ModuleList(
            nn.Conv2d(stage_channels[name], c, 1, bias=False)
            for name, c in zip(_AFFINITY_STAGES, channels, strict=True)
        )
        self.fuse = nn.Conv2d(sum(channels), out_channels, 1, bias=False)
        for conv in self.stage_convs:
            nn.init.kaiming_normal_(conv.weight)
        nn.init.xavier_uniform_(self.fuse.weight, gain=4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Affinity features ``(B, out_channels, ⌈H/8⌉, ⌈W/8⌉)`` of normalised ``(B, 3, H, W)``."""
        stages = self.backbone.forward_stages(x)
        feats = [
            F.elu(conv(stages[name]))
            for name, conv in zip(_AFFINITY_STAGES, self.stage_convs, strict=True)
        ]
        return F.elu(self.fuse(torch.cat(feats, dim=1)))

    def param_groups(self) -> list[dict]:
        """Trainable parameters split into ``backbone`` (``lr_mult`` 1) and ``head`` (10) groups."""
        return backbone_head_groups(self.backbone, self.stage_convs, self.fuse)


class BoundaryNet(nn.Module):
    """IRNet's boundary branch on a completely frozen backbone (Ahn, Cho & Kwak, CVPR 2019).

    The backbone gets ``requires_grad=False`` on every parameter, runs without autograd and stays
    in eval mode (BatchNorm running statistics) even after ``.train()``. Its features
    x1 = max-pooled stem (stride 4), x2 = ``layer1``, x3 = ``layer2``, x4 = ``layer3``, x5 =
    ``layer4`` each go through a bias-free 1×1 conv to ``channels`` → GroupNorm(4) → bilinear
    upsampling (``align_corners=False``) to x2's size → ReLU; the concatenation (5·channels) goes
    through a 1×1 conv with bias to one boundary logit at stride 4.

    Deliberate differences: IRN upsamples x3 by ×2 and x4/x5 by ×4 (its strides are 4, 4, 8, 16,
    16) and crops to x2's size; here each map is resized to x2's size directly, whatever the
    backbone's output stride. IRN's displacement-field branch (needed for instance segmentation
    only, trained jointly in IRN) is out of scope.

    Args:
        backbone: ``{"name": <BACKBONES key>, **constructor kwargs}``; IRN uses the ImageNet
            ResNet-50 with strides (2, 2, 2, 1): ``{"name": "resnet", "depth": 50,
            "output_stride": 16, "dilate": False}``. Needs ``forward_stages``, ``maxpool`` and
            ``stage_channels``.
        channels: width of every per-stage projection (IRN: 32); a multiple of 4 (GroupNorm(4)).
        freeze_backbone: True (IRN) keeps the backbone frozen as described above; False trains it
            with the branch (a ``backbone`` parameter group) — for data without ImageNet-grade
            features, such as the synthetic benchmark.

    Attributes:
        build_kwargs: plain-container constructor kwargs; ``BoundaryNet(**build_kwargs)`` rebuilds
            the same architecture (stored in checkpoints).
    """

    def __init__(
        self, *, backbone: Mapping, channels: int = 32, freeze_backbone: bool = True
    ) -> None:
        super().__init__()
        channels = _positive_int(channels, "channels")
        if channels % 4:
            raise ValueError(f"channels must be a multiple of 4 (GroupNorm(4)), got {channels}")
        self.build_kwargs = {
            "backbone": copy.deepcopy(dict(backbone)),
            "channels": channels,
            "freeze_backbone": bool(freeze_backbone),
        }
        self.freeze_backbone = bool(freeze_backbone)
        self.backbone = backbone_from_config(backbone)
        if self.freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        stage_channels = dict(self.backbone.stage_channels)
        stage_channels["pooled_stem"] = stage_channels["stem"]
        self.stage_convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(stage_channels[name], channels, 1, bias=False),
                nn.GroupNorm(4, channels),
            )
            for name in _BOUNDARY_STAGES
        )
        self.classifier = nn.Conv2d(len(_BOUNDARY_STAGES) * channels, 1, 1, bias=True)

    def train(self, mode: bool = True) -> BoundaryNet:
        """Set the branch's train/eval mode; a frozen backbone always stays in eval mode."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def backbone_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """IRN's x1..x5 of normalised images ``(B, 3, H, W)`` (without autograd when frozen)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            stages = self.backbone.forward_stages(x)
            stages["pooled_stem"] = self.backbone.maxpool(stages["stem"])
        return [stages[name] for name in _BOUNDARY_STAGES]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Boundary logits ``(B, 1, h, w)`` at ``layer1``'s size (stride 4) of images ``x``."""
        feats = self.backbone_features(x)
        size = feats[1].shape[-2:]
        outs = []
        for feat, block in zip(feats, self.stage_convs, strict=True):
            out = block(feat)
            if out.shape[-2:] != size:
                out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
            outs.append(F.relu(out))
        return self.classifier(torch.cat(outs, dim=1))

    def param_groups(self) -> list[dict]:
        """The boundary branch as one ``head`` group (``lr_mult`` 1, as IRN), plus a ``backbone``
        group (``lr_mult`` 1) when the backbone is trained."""
        params = [*self.stage_convs.parameters(), *self.classifier.parameters()]
        groups = [
            {"name": "head", "lr_mult": 1.0, "params": [p for p in params if p.requires_grad]}
        ]
        if not self.freeze_backbone:
            trainable = [p for p in self.backbone.parameters() if p.requires_grad]
            groups.insert(0, {"name": "backbone", "lr_mult": 1.0, "params": trainable})
        return groups
