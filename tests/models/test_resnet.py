"""Tests for the parameterised ResNet backbone against torchvision and hand-computed sizes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from wsss.models.backbones import BACKBONES, build_backbone, load_pretrained
from wsss.models.resnet import BasicBlock, ResNet


def _expected_size(n: int, stride: int) -> int:
    """Every stride-2 op (7×7/p3 conv, 3×3/p1 max-pool, 3×3/p1 conv, 1×1 conv) maps n → ⌈n/2⌉."""
    for _ in range(int(math.log2(stride))):
        n = (n + 1) // 2
    return n


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("hw", [(64, 64), (65, 77)])
@pytest.mark.parametrize("depth", [10, 50])
def test_output_stride(output_stride, hw, depth):
    model = ResNet(depth, output_stride=output_stride, base_width=8).eval()
    feats = model.forward_stages(torch.randn(1, 3, *hw))
    layer_strides = {
        "stem": 2,
        "layer1": 4,
        "layer2": 8,
        "layer3": min(16, output_stride),
        "layer4": output_stride,
    }
    for name, stride in layer_strides.items():
        assert feats[name].shape[-2:] == tuple(_expected_size(n, stride) for n in hw), name
        assert feats[name].shape[1] == model.stage_channels[name], name
    x = torch.randn(1, 3, *hw)
    assert torch.equal(model(x), model.forward_stages(x)["layer4"])


@pytest.mark.parametrize(
    "depth, base_width, expected", [(18, 64, 512), (50, 64, 2048), (50, 16, 512), (34, 8, 64)]
)
def test_out_channels(depth, base_width, expected):
    model = ResNet(depth, base_width=base_width)
    assert model.out_channels == expected
    assert model.stage_channels["layer1"] == expected // 8


def test_dilated_basic_block_matches_functional_reference():
    torch.manual_seed(0)
    model = ResNet(18, output_stride=8, base_width=8).eval()
    # torchvision convention: first block of a dilated stage keeps the previous dilation
    assert [b.conv1.dilation[0] for b in model.layer3] == [1, 2]
    assert [b.conv1.dilation[0] for b in model.layer4] == [2, 4]
    assert all(b.conv1.stride == (1, 1) for b in model.layer4)
    block = model.layer4[1]
    for bn in (block.bn1, block.bn2):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 64, 9, 11)

    def bn(t, m):
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    h = F.relu(bn(F.conv2d(x, block.conv1.weight, padding=4, dilation=4), block.bn1))
    ref = F.relu(bn(F.conv2d(h, block.conv2.weight, padding=4, dilation=4), block.bn2) + x)
    torch.testing.assert_close(block(x), ref)


def test_multi_grid_and_undilated():
    model = ResNet(50, output_stride=16, base_width=8, multi_grid=(1, 2, 4))
    assert [b.conv2.dilation[0] for b in model.layer4] == [2, 4, 8]
    plain = ResNet(50, output_stride=16, base_width=8, dilate=False)
    assert all(b.conv2.dilation == (1, 1) for b in plain.layer4)
    assert plain(torch.zeros(1, 3, 64, 64)).shape[-1] == 4
    with pytest.raises(ValueError, match="multi_grid"):
        ResNet(50, base_width=8, multi_grid=(1, 2))


def _randomise_bn(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)


def _torchvision_features(tv: torchvision.models.ResNet, x: torch.Tensor) -> torch.Tensor:
    x = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
    return tv.layer4(tv.layer3(tv.layer2(tv.layer1(x))))


@pytest.mark.parametrize(
    "depth, output_stride, tv_builder, tv_dilation",
    [
        (18, 32, torchvision.models.resnet18, None),
        (50, 32, torchvision.models.resnet50, None),
        (50, 8, torchvision.models.resnet50, [False, True, True]),
    ],
)
def test_torchvision_state_dict_loads_and_matches(
    tmp_path, depth, output_stride, tv_builder, tv_dilation
):
    torch.manual_seed(0)
    tv = tv_builder(replace_stride_with_dilation=tv_dilation) if tv_dilation else tv_builder()
    _randomise_bn(tv)
    path = tmp_path / "tv.pth"
    torch.save(tv.state_dict(), path)  # includes fc.* and num_batches_tracked
    model = ResNet(depth, output_stride=output_stride)
    load_pretrained(model, path)
    tv.eval()
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _torchvision_features(tv, x))


def test_load_pretrained_refuses_mismatch(tmp_path):
    model = ResNet(10, base_width=8)
    state = model.state_dict()
    del state["layer2.0.bn1.weight"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        load_pretrained(ResNet(10, base_width=8), path)
    assert "layer2.0.bn1.weight" in str(err.value)
    assert "extra.weight" in str(err.value)
    assert "bad.pth" in str(err.value)

    torch.save(ResNet(10, base_width=16).state_dict(), path)  # wrong widths
    with pytest.raises(ValueError, match="conv1.weight"):
        load_pretrained(ResNet(10, base_width=8), path)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_pretrained(model, tmp_path / "nope.pth")


def test_frozen_bn_stays_frozen_in_train_mode():
    torch.manual_seed(0)
    model = ResNet(10, base_width=8, frozen_bn=True)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone()) for m in bns]
    model.eval()
    model.train()
    assert model.training  # train() itself works (IRN's override did not call super)
    assert model.layer1[0].conv1.training
    assert all(not m.training for m in bns)
    assert all(not p.requires_grad for m in bns for p in m.parameters())
    model(torch.randn(2, 3, 32, 32) * 3 + 1).sum().backward()
    for m, (mean, var) in zip(bns, before, strict=True):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
    assert model.conv1.weight.grad is not None

    free = ResNet(10, base_width=8).train()
    free(torch.randn(2, 3, 32, 32) * 3 + 1)
    assert not torch.equal(free.bn1.running_mean, torch.zeros(8))  # control: stats do move


def test_bad_arguments_and_registry():
    with pytest.raises(ValueError, match="depth"):
        ResNet(42)
    with pytest.raises(ValueError, match="output_stride"):
        ResNet(18, output_stride=4)
    with pytest.raises(KeyError, match="resnet"):
        build_backbone("vgg16")
    assert isinstance(build_backbone("resnet", depth=10, base_width=8), ResNet)
    assert set(BACKBONES) >= {"resnet"}


def test_deep_stem_shapes():
    model = ResNet(10, base_width=16, deep_stem=True)
    assert [m.out_channels for m in model.conv1 if isinstance(m, torch.nn.Conv2d)] == [8, 8, 16]
    assert model.forward_stages(torch.zeros(1, 3, 33, 33))["stem"].shape == (1, 16, 17, 17)
    assert isinstance(model.layer1[0], BasicBlock)


def _ceil_pool_size(n: int) -> int:
    """3×3/2 pad-1 max-pool with ``ceil_mode`` (PyTorch docs): ⌈(n + 2 − 3)/2⌉ + 1, minus one if
    the last window would start in the right padding."""
    out = math.ceil((n - 1) / 2) + 1
    return out - 1 if (out - 1) * 2 >= n + 1 else out


@pytest.mark.parametrize("hw", [(64, 64), (65, 77), (34, 46)])
def test_stem_pool_ceil_sizes(hw):
    model = ResNet(10, output_stride=8, base_width=8, deep_stem=True, stem_pool_ceil=True).eval()
    feats = model.forward_stages(torch.randn(1, 3, *hw))
    stem = [(n + 1) // 2 for n in hw]
    pooled = [_ceil_pool_size(n) for n in stem]
    layer2 = tuple((n + 1) // 2 for n in pooled)
    assert feats["stem"].shape[-2:] == tuple(stem)
    assert feats["layer1"].shape[-2:] == tuple(pooled)
    for name in ("layer2", "layer3", "layer4"):
        assert feats[name].shape[-2:] == layer2, name
    # 64 → stem 32 → 17 with ceil (16 without): the option changes something for even sizes
    if hw == (64, 64):
        assert pooled == [17, 17]
        plain = ResNet(10, output_stride=8, base_width=8, deep_stem=True).eval()
        assert plain.forward_stages(torch.randn(1, 3, *hw))["layer1"].shape[-1] == 16
    assert model.maxpool.ceil_mode and not ResNet(10, base_width=8).maxpool.ceil_mode


@pytest.mark.parametrize(
    "depth, output_stride, contract, layer3, layer4",
    [
        (50, 8, True, [1, 2, 2, 2, 2, 2], [2, 4, 4]),  # torchvision convention (default)
        (50, 8, False, [2] * 6, [4] * 3),  # CCNet: every block uses its stage's dilation
        (18, 16, True, [1, 1], [1, 2]),
        (18, 16, False, [1, 1], [2, 2]),
        (18, 32, False, [1, 1], [1, 1]),
    ],
)
def test_contract_dilation(depth, output_stride, contract, layer3, layer4):
    model = ResNet(
        depth, output_stride=output_stride, base_width=8, contract_dilation=contract
    ).eval()

    def dilations(layer):
        convs = [b.conv2 if hasattr(b, "conv3") else b.conv1 for b in layer]
        assert all(c.padding == c.dilation for c in convs)  # "same" 3×3 convs
        return [c.dilation[0] for c in convs]

    assert dilations(model.layer3) == layer3
    assert dilations(model.layer4) == layer4
    x = torch.randn(1, 3, 40, 52)
    assert model(x).shape[-2:] == tuple(_expected_size(n, output_stride) for n in (40, 52))


def test_ccnet_backbone_layout():
    """CCNet's ResNet-101 (spec §2.5): deep stem, ceil pool, layer3 all dilation 2, layer4 all 4."""
    model = ResNet(
        101,
        output_stride=8,
        base_width=8,
        deep_stem=True,
        stem_pool_ceil=True,
        contract_dilation=False,
        multi_grid=(1, 1, 1),
    )
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]
    assert {b.conv2.dilation[0] for b in model.layer3} == {2}
    assert [b.conv2.dilation[0] for b in model.layer4] == [4, 4, 4]
    assert all(b.conv2.stride == (1, 1) for b in [*model.layer3, *model.layer4])
