"""Tests for wsss.models.affinity: AffinityNet (PSA) and BoundaryNet (IRNet boundary branch)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tests.models.conftest import TINY_RESNET_W8 as TINY
from wsss.models.affinity import AffinityNet, BoundaryNet

TINY_OS8 = {**TINY, "output_stride": 8}
# IRN's layout: strides (2, 2, 2, 1) without dilation
TINY_IRN = {**TINY, "output_stride": 16, "dilate": False}


def _rebuild(cls, model, x):
    clone = cls(**model.build_kwargs)
    assert clone.state_dict().keys() == model.state_dict().keys()
    clone.load_state_dict(model.state_dict(), strict=True)
    model.eval()
    clone.eval()
    with torch.no_grad():
        torch.testing.assert_close(clone(x), model(x))


@pytest.mark.parametrize(
    "kwargs, channels",
    [({}, 448), ({"feature_channels": (4, 8, 12), "out_channels": 16}, 16)],
)
def test_affinitynet_shapes_grads_groups_rebuild(kwargs, channels):
    torch.manual_seed(0)
    model = AffinityNet(backbone=TINY_OS8, **kwargs).train()
    x = torch.randn(2, 3, 64, 64)
    feats = model(x)
    assert feats.shape == (2, channels, 8, 8)  # stride 8
    assert torch.isfinite(feats).all() and (feats >= -1).all()  # ELU output
    feats.square().mean().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    for name, p in trainable:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    groups = model.param_groups()
    assert [(g["name"], g["lr_mult"]) for g in groups] == [("backbone", 1.0), ("head", 10.0)]
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for _, p in trainable)
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.backbone.parameters()}
    _rebuild(AffinityNet, model, x)


def test_affinitynet_matches_reference_and_init():
    torch.manual_seed(0)
    model = AffinityNet(backbone=TINY_OS8).eval()
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        stages = model.backbone.forward_stages(x)
        parts = [
            F.elu(F.conv2d(stages[name], conv.weight))
            for name, conv in zip(("layer2", "layer3", "layer4"), model.stage_convs, strict=True)
        ]
        reference = F.elu(F.conv2d(torch.cat(parts, 1), model.fuse.weight))
        torch.testing.assert_close(model(x), reference)
    assert reference.shape == (1, 448, 5, 7)
    assert all(c.bias is None for c in model.stage_convs) and model.fuse.bias is None
    # Kaiming normal (fan-in, gain √2): std √(2 / fan_in); Xavier uniform gain 4 on f9
    for conv in model.stage_convs:
        std = math.sqrt(2.0 / conv.in_channels)
        assert 0.85 * std < conv.weight.std().item() < 1.15 * std
    bound = 4.0 * math.sqrt(6.0 / (448 + 448))
    assert model.fuse.weight.abs().max().item() <= bound
    assert model.fuse.weight.abs().max().item() > 0.95 * bound


def test_affinitynet_needs_output_stride_8():
    with pytest.raises(ValueError, match="output_stride 8"):
        AffinityNet(backbone={**TINY, "output_stride": 16})
    with pytest.raises(ValueError, match="feature_channels"):
        AffinityNet(backbone=TINY_OS8, feature_channels=(4, 8))


@pytest.mark.parametrize(
    "backbone, size, out_size",
    [
        (TINY_IRN, (64, 64), (16, 16)),
        ({**TINY, "output_stride": 8}, (64, 64), (16, 16)),
        ({**TINY, "output_stride": 32}, (50, 70), (13, 18)),  # stride 4 = ceil(ceil(n/2)/2)
    ],
)
def test_boundarynet_shapes_frozen_backbone_grads_rebuild(backbone, size, out_size):
    torch.manual_seed(0)
    model = BoundaryNet(backbone=backbone, channels=8).train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(m.training for m in model.backbone.modules())  # eval even after .train()
    assert model.training and model.classifier.training
    stats = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    x = torch.randn(2, 3, *size)
    logits = model(x)
    assert logits.shape == (2, 1, *out_size) and torch.isfinite(logits).all()
    F.binary_cross_entropy_with_logits(logits, torch.rand_like(logits)).backward()
    for name, p in model.backbone.named_parameters():
        assert p.grad is None, name
    for name, value in model.backbone.state_dict().items():  # BN running stats untouched
        assert torch.equal(value, stats[name]), name
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(not n.startswith("backbone.") for n, _ in trainable)
    for name, p in trainable:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    (group,) = model.param_groups()
    assert group["lr_mult"] == 1.0
    assert sorted(map(id, group["params"])) == sorted(id(p) for _, p in trainable)
    _rebuild(BoundaryNet, model, x)
    model.train()
    assert not model.backbone.training


def test_boundarynet_matches_irn_upsample_and_crop():
    # IRN: x3 upsampled ×2, x4 and x5 ×4 (bilinear, align_corners=False), cropped to x2's size.
    # With sizes divisible by 16 this equals resizing to x2's size directly.
    torch.manual_seed(0)
    model = BoundaryNet(backbone=TINY_IRN, channels=8).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        stages = model.backbone.forward_stages(x)
        feats = [
            F.max_pool2d(stages["stem"], 3, 2, padding=1),
            stages["layer1"],
            stages["layer2"],
            stages["layer3"],
            stages["layer4"],
        ]
        h, w = feats[1].shape[-2:]
        outs = []
        for feat, block, scale in zip(feats, model.stage_convs, (1, 1, 2, 4, 4), strict=True):
            conv, norm = block
            out = F.group_norm(F.conv2d(feat, conv.weight), 4, norm.weight, norm.bias)
            if scale > 1:
                out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
            outs.append(F.relu(out[..., :h, :w]))
        reference = F.conv2d(torch.cat(outs, 1), model.classifier.weight, model.classifier.bias)
        torch.testing.assert_close(model(x), reference)
    assert reference.shape == (1, 1, 16, 24)
    assert model.classifier.in_channels == 40 and model.classifier.bias is not None


def test_boundarynet_validation():
    with pytest.raises(ValueError, match="multiple of 4"):
        BoundaryNet(backbone=TINY, channels=6)
    assert BoundaryNet(backbone=TINY).build_kwargs == {
        "backbone": TINY,
        "channels": 32,
        "freeze_backbone": True,
    }


def test_boundarynet_trainable_backbone():
    net = BoundaryNet(backbone=TINY, channels=8, freeze_backbone=False).train()
    assert net.backbone.training
    names = [g["name"] for g in net.param_groups()]
    assert names == ["backbone", "head"]
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in net.backbone.parameters())
