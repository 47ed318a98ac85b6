"""ResNet-38: strides, side outputs, frozen parts and strict loading of converted weights."""

import pytest
import torch

from wsss.models import build_backbone, load_pretrained
from wsss.models.resnet38 import ResNet38

SMALL = {"width": 0.0625, "frozen_bn": False, "frozen_stem": False}


def test_stage_shapes_and_stride_8():
    net = ResNet38(**SMALL).eval()
    feats = net.forward_stages(torch.randn(2, 3, 61, 80))
    # 61 → 31 → 16 → 8 (3×3 convs with stride 2, padding 1: ⌈n/2⌉ each)
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "conv4": (2, net.stage_channels["conv4"], 8, 10),
        "conv5": (2, net.stage_channels["conv5"], 8, 10),
        "conv6": (2, net.out_channels, 8, 10),
    }
    assert net.stage_channels == {"conv4": 32, "conv5": 64, "conv6": 256}
    assert torch.equal(
        net(torch.ones(1, 3, 16, 16)), net.forward_stages(torch.ones(1, 3, 16, 16))["conv6"]
    )
    assert (feats["conv6"] >= 0).all()  # BN-ReLU output


def test_full_width_channels_and_parameter_names():
    net = ResNet38()  # the ImageNet network
    assert net.stage_channels == {"conv4": 512, "conv5": 1024, "conv6": 4096}
    names = set(net.state_dict())
    # names of the converted MXNet weights (PSA's conversion)
    for key in [
        "conv1a.weight",
        "b2.conv_branch1.weight",
        "b2_2.bn_branch2b1.running_var",
        "b4_5.conv_branch2b1.weight",
        "b5.conv_branch1.weight",
        "b6.conv_branch2b2.weight",
        "b7.bn_branch2b2.weight",
        "bn7.running_mean",
    ]:
        assert key in names
    # identity shortcuts have no projection
    assert "b2_1.conv_branch1.weight" not in names and "b5_1.conv_branch1.weight" not in names
    # 3×3 convs of b5 use dilation 2 (first one 1), b6/b7 dilation 4
    assert net.b5.conv_branch2a.dilation == (1, 1) and net.b5.conv_branch2b1.dilation == (2, 2)
    assert net.b6.conv_branch2b1.dilation == (4, 4) and net.b7.conv_branch2b1.dilation == (4, 4)
    assert net.b7.conv_branch2a.out_channels == 1024 and net.b7.conv_branch2b1.out_channels == 2048


def test_frozen_stem_and_bn():
    net = ResNet38(width=0.0625)  # defaults: frozen BN and stem, as released
    frozen = {n for n, p in net.named_parameters() if not p.requires_grad}
    assert "conv1a.weight" in frozen and "b2_2.conv_branch2b1.weight" in frozen
    assert "b3.conv_branch2a.weight" not in frozen
    assert all(
        n in frozen for n in dict(net.named_parameters()) if ".bn" in n or n.startswith("bn7")
    )
    net.train()
    assert not any(m.training for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_converted_weights_load_strictly(tmp_path):
    source = ResNet38(**SMALL)
    path = tmp_path / "resnet38d.pth"
    state = {k: v for k, v in source.state_dict().items() if "num_batches_tracked" not in k}
    torch.save(state, path)
    net = build_backbone("resnet38", **SMALL)
    load_pretrained(net, path)
    assert torch.equal(net.b4_3.conv_branch2a.weight, source.b4_3.conv_branch2a.weight)

    del state["b7.conv_branch1.weight"]
    state["linear1000.weight"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"b7\.conv_branch1\.weight.*linear1000\.weight"):
        load_pretrained(net, path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        ResNet38(width=0)
    with pytest.raises(ValueError, match="dropout"):
        ResNet38(dropout=(0.3,))
