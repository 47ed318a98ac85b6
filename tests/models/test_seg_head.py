"""The shared segmentation plumbing (wsss.models.seg_head): a new head is only its idea, and the
three networks built on it keep their checkpoint layouts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests.models.conftest import TINY_RESNET_W8
from wsss.models import PCAA, CCNet, DeepLab
from wsss.models.backbones import backbone_from_config
from wsss.models.seg_head import SegmentationNet, conv_head

BACKBONE = {**TINY_RESNET_W8, "output_stride": 8}


class OneByOne(SegmentationNet):
    """The smallest head: a 1×1 conv on layer4, a DSN head on layer3."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone_from_config(BACKBONE)
        channels = self.backbone.stage_channels
        self.head = nn.Conv2d(channels["layer4"], num_classes, 1)
        self.aux_head = conv_head([nn.Conv2d(channels["layer3"], 4, 1)], 4, num_classes, 0.0)


def test_a_head_is_only_its_idea():
    torch.manual_seed(0)
    net, x = OneByOne(3), torch.randn(2, 3, 37, 45)
    feats = net.backbone.forward_stages(x)

    def up(t):  # the reference: plain bilinear resizing to the input size
        return F.interpolate(t, size=(37, 45), mode="bilinear", align_corners=False)

    out = net.train()(x)
    assert list(out) == ["out", "aux"]
    torch.testing.assert_close(out["out"], up(net.head(feats["layer4"])), rtol=0, atol=0)
    torch.testing.assert_close(out["aux"], up(net.aux_head(feats["layer3"])), rtol=0, atol=0)
    assert list(net.eval()(x)) == ["out"]
    backbone, head = net.param_groups()
    assert (backbone["name"], backbone["lr_mult"], head["name"], head["lr_mult"]) == (
        "backbone", 1.0, "head", 10.0,
    )  # fmt: skip
    assert [id(p) for p in backbone["params"]] == [id(p) for p in net.backbone.parameters()]
    expected = [*net.head.parameters(), *net.aux_head.parameters()]
    assert [id(p) for p in head["params"]] == [id(p) for p in expected]


def test_the_networks_keep_their_checkpoint_layouts():
    # the key names of the heads as the networks had them before the shared module (checkpoints)
    ccnet = CCNet(num_classes=3, backbone=BACKBONE, recurrence=1, inter_channels=8, aux_channels=8)
    assert [k for k in ccnet.state_dict() if k.startswith("aux_head.") and "running" not in k] == [
        "aux_head.0.weight", "aux_head.0.bias", "aux_head.1.weight", "aux_head.1.bias",
        "aux_head.1.num_batches_tracked", "aux_head.4.weight", "aux_head.4.bias",
    ]  # fmt: skip
    assert "head.bottleneck.4.weight" in ccnet.state_dict()
    pcaa = PCAA(num_classes=3, backbone=BACKBONE, channels=8, aux_channels=8)
    assert {"aux_head.0.0.weight", "aux_head.2.bias", "head.classifier.2.weight"} <= set(
        pcaa.state_dict()
    )
    deeplab = DeepLab(num_classes=3, backbone=BACKBONE, aspp_channels=8, atrous_rates=[1])
    assert deeplab.aux_head is None and "head.5.weight" in deeplab.state_dict()
    assert [g["name"] for g in deeplab.param_groups()] == ["backbone", "head"]
