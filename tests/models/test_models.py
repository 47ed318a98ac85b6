"""Smoke and contract tests over the model registries, plus CAMClassifier/DeepLab head checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.models.conftest import TINY_RESNET_W8 as TINY
from wsss.models import (
    CAM_MODELS,
    SEG_MODELS,
    CAMClassifier,
    CCNet,
    DeepLab,
    build_cam_model,
    build_seg_model,
)

# CCNet's backbone layout (deep stem, ceil max-pool, uncontracted dilation) at tiny width
CCNET_BACKBONE = {
    **TINY,
    "output_stride": 8,
    "deep_stem": True,
    "stem_pool_ceil": True,
    "contract_dilation": False,
}
CCNET_TINY = {
    "num_classes": 3,
    "backbone": CCNET_BACKBONE,
    "recurrence": 2,
    "inter_channels": 16,
    "aux_channels": 8,
    "cca_impl": "torch",
}
# every registry key needs tiny configs here; a new model without one fails test_configs_cover
SEG_CONFIGS = {
    "deeplab": [
        {"num_classes": 3, "backbone": {**TINY, "output_stride": 8}, "aspp_channels": 8},
        {"num_classes": 3, "backbone": {**TINY, "depth": 18, "output_stride": 16}, "head": "v2"},
    ],
    "ccnet": [
        CCNET_TINY,
        {
            "num_classes": 3,
            "backbone": {**TINY, "output_stride": 16},
            "recurrence": 1,
            "inter_channels": 8,
            "reduction": 4,
            "aux_channels": 8,
            "dropout": 0.0,
        },
    ],
    "pcaa": [  # ResNet-v1c layout (deep stem, every block of a dilated stage dilated)
        {
            "num_classes": 3,
            "backbone": {**TINY, "output_stride": 8, "deep_stem": True, "contract_dilation": False},
            "bins": [2],
            "channels": 16,
            "aux_channels": 8,
        },
        {
            "num_classes": 3,
            "backbone": {**TINY, "output_stride": 16},
            "bins": [[1, 2], [3, 3]],
            "channels": 8,
            "attention_channels": 6,
            "dropout": 0.1,
            "aux_channels": None,
        },
    ],
}
PCM = {"feature_stages": ["layer2", "layer3", "layer4"], "embed_channels": [4, 4, 8]}
CAM_CONFIGS = {
    "cam": [
        {"num_fg_classes": 4, "backbone": {**TINY, "output_stride": 16}},
        {"num_fg_classes": 4, "backbone": {**TINY, "frozen_bn": True, "deep_stem": True}},
    ],
    "seam": [{"num_fg_classes": 4, "backbone": {**TINY, "output_stride": 8}, **PCM}],
    "cpn": [
        {"num_fg_classes": 4, "backbone": {**TINY, "output_stride": 8}, "prcm": True, **PCM},
        {
            "num_fg_classes": 4,
            "backbone": {"name": "resnet38", "width": 0.0625, "frozen_bn": False},
            "prcm": True,
            "prcm_layout": "transpose",
            "embed_channels": [4, 4, 8],
        },
    ],
    "eps": [  # EPS's head on the backbone, and SMAF's with the 1×1 conv-BN-ReLU embedding
        {"num_fg_classes": 4, "backbone": {**TINY, "output_stride": 8}},
        {
            "num_fg_classes": 4,
            "backbone": {**TINY, "output_stride": 8},
            "embed_channels": 8,
            "frozen_embed_bn": True,
        },
    ],
}
SEG_CASES = [(n, c) for n, cs in SEG_CONFIGS.items() for c in cs]
CAM_CASES = [(n, c) for n, cs in CAM_CONFIGS.items() for c in cs]


def test_configs_cover_registries():
    assert set(SEG_CONFIGS) == set(SEG_MODELS)
    assert set(CAM_CONFIGS) == set(CAM_MODELS)


def _check_grads_and_groups(model: torch.nn.Module) -> None:
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), name
    groups = model.param_groups()
    assert [g["lr_mult"] for g in groups] == [1.0, 10.0]
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in trainable}
    assert {id(p) for p in groups[0]["params"]} == {
        id(p) for p in model.backbone.parameters() if p.requires_grad
    }


def _rebuilt_matches(model: torch.nn.Module, build, name: str, x: torch.Tensor) -> None:
    clone = build(name, **model.build_kwargs)
    clone.load_state_dict(model.state_dict(), strict=True)
    model.eval()
    clone.eval()
    with torch.no_grad():
        a, b = model(x), clone(x)
    key = "out" if isinstance(a, dict) and "out" in a else "logits"
    a = a[key] if isinstance(a, dict) else a
    b = b[key] if isinstance(b, dict) else b
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name, cfg", SEG_CASES)
def test_seg_model_forward_backward(name, cfg):
    torch.manual_seed(0)
    model = build_seg_model(name, **cfg).train()
    x = torch.randn(2, 3, 48, 48)
    out = model(x)
    assert set(out) >= {"out"}
    assert out["out"].shape == (2, cfg["num_classes"], 48, 48)
    dense = [out[k] for k in ("out", "aux") if k in out]  # PCAA adds coarse "bin_logits"
    for value in dense:
        assert torch.isfinite(value).all()
    target = torch.randint(0, cfg["num_classes"], (2, 48, 48))
    sum(F.cross_entropy(v, target) for v in dense).backward()
    _check_grads_and_groups(model)
    _rebuilt_matches(model, build_seg_model, name, x)


@pytest.mark.parametrize("name, cfg", CAM_CASES)
def test_cam_model_forward_backward(name, cfg):
    torch.manual_seed(0)
    model = build_cam_model(name, **cfg).train()
    x = torch.randn(2, 3, 48, 48)
    k = cfg["num_fg_classes"]
    cams = model.cams(x)
    assert cams.ndim == 4 and cams.shape[:2] == (2, k)
    if name == "cam":
        logits = model(x)
        assert logits.shape == (2, k) and torch.isfinite(logits).all()
        F.multilabel_soft_margin_loss(logits, torch.randint(0, 2, (2, k)).float()).backward()
    elif name == "eps":  # fg + bg logits (background last), their GAP, the head's input
        out = model(x)
        assert out["logits"].shape == (2, k + 1, 6, 6)
        torch.testing.assert_close(out["scores"], out["logits"].mean(dim=(2, 3)))
        # cams: the softmax over all K + 1 channels without the background one
        torch.testing.assert_close(cams, torch.softmax(model(x)["logits"], 1)[:, :k])
        out["logits"].square().mean().backward()
        if cfg.get("frozen_embed_bn"):
            assert not model.embed[1].training  # the release's accidental frozen BN
    else:  # SEAM/CPN: (fc8 logits, refined maps) with the background channel first
        cam, cam_rv = model(x)
        assert cam.shape == cam_rv.shape == (2, k + 1, 6, 6)
        (cam.square().mean() + cam_rv.square().mean()).backward()
    _check_grads_and_groups(model)
    _rebuilt_matches(model, build_cam_model, name, x)


def test_unknown_names_list_valid_ones():
    with pytest.raises(KeyError, match="deeplab"):
        build_seg_model("segformer", num_classes=3)
    with pytest.raises(KeyError, match="cam"):
        build_cam_model("nope", num_fg_classes=3)
    with pytest.raises(KeyError, match="resnet"):
        CAMClassifier(num_fg_classes=3, backbone={"name": "vgg"})
    with pytest.raises(ValueError, match="name"):
        CAMClassifier(num_fg_classes=3, backbone={"depth": 10})
    with pytest.raises(ValueError, match="v4"):
        DeepLab(num_classes=3, backbone=TINY, head="v4")


def test_cam_gap_equals_logits_and_relu():
    torch.manual_seed(0)
    model = CAMClassifier(num_fg_classes=5, backbone={**TINY, "output_stride": 16}).eval()
    x = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        logits = model(x)
        linear = model.cams(x, relu=False)
        cams = model.cams(x)
        feats = model.backbone(x)
    torch.testing.assert_close(linear.mean(dim=(2, 3)), logits, rtol=1e-4, atol=1e-5)
    # independent reference: mean feature vector times the classifier matrix
    w = model.classifier.weight[:, :, 0, 0]
    torch.testing.assert_close(feats.mean(dim=(2, 3)) @ w.T, logits, rtol=1e-4, atol=1e-5)
    assert (cams >= 0).all() and torch.equal(cams, linear.clamp(min=0))
    assert (linear < 0).any()  # so the ReLU check above is not vacuous
    assert cams.shape == (2, 5, 3, 4)
    assert model.classifier.bias is None


def test_cam_detach_until_layer2():
    torch.manual_seed(0)
    model = CAMClassifier(num_fg_classes=3, backbone=TINY, detach_until="layer2").train()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    for name, p in model.backbone.named_parameters():
        early = name.split(".")[0] in ("conv1", "bn1", "layer1", "layer2")
        assert p.requires_grad is not early, name
        assert (p.grad is None) is early, name
    assert model.classifier.weight.grad is not None
    assert model.build_kwargs["detach_until"] == "layer2"


def test_deeplab_v2_head_is_sum_of_dilated_convs():
    torch.manual_seed(0)
    model = DeepLab(num_classes=4, backbone={**TINY, "output_stride": 8}, head="v2").eval()
    assert model.build_kwargs["atrous_rates"] == [6, 12, 18, 24]
    convs = model.head.convs
    for conv in convs:
        assert torch.equal(conv.bias, torch.zeros(4))
        assert 0.005 < conv.weight.std().item() < 0.015
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        feats = model.backbone(x)
        ref = sum(
            F.conv2d(feats, c.weight, c.bias, padding=r, dilation=r)
            for c, r in zip(convs, (6, 12, 18, 24), strict=True)
        )
        ref = F.interpolate(ref, size=(40, 40), mode="bilinear", align_corners=False)
        torch.testing.assert_close(model(x)["out"], ref)


def test_deeplab_v3_head_width_and_rates():
    model = DeepLab(num_classes=3, backbone=TINY, aspp_channels=16, atrous_rates=(2, 4))
    aspp = model.head[0]
    assert [m[0].dilation[0] for m in list(aspp.convs)[1:-1]] == [2, 4]
    assert aspp.project[0].out_channels == 16
    assert model.head[-1].out_channels == 3


def _set_gamma(model: CCNet, value: float) -> None:
    """γ starts at 0 (attention off, zero gradient to query/key); tests switch it on explicitly."""
    with torch.no_grad():
        model.head.rcca.attention.gamma.fill_(value)


def test_ccnet_train_outputs_and_every_parameter_learns():
    torch.manual_seed(0)
    model = CCNet(**CCNET_TINY).train()
    assert model.head.rcca.attention.gamma.item() == 0.0
    _set_gamma(model, 0.5)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert set(out) == {"out", "aux"}
    for value in out.values():
        assert value.shape == (2, 3, 64, 64) and torch.isfinite(value).all()
    target = torch.randint(0, 3, (2, 64, 64))
    (F.cross_entropy(out["out"], target) + 0.4 * F.cross_entropy(out["aux"], target)).backward()
    _check_grads_and_groups(model)
    for name, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, f"{name} got a zero gradient"
    head_group = {id(p) for p in model.param_groups()[1]["params"]}
    assert {id(p) for p in model.aux_head.parameters()} <= head_group
    assert {id(p) for p in model.head.rcca.parameters()} <= head_group


def test_ccnet_eval_returns_only_out_and_rebuilds():
    torch.manual_seed(0)
    model = CCNet(**CCNET_TINY).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 40, 56))
    assert set(out) == {"out"} and out["out"].shape == (1, 3, 40, 56)
    clone = CCNet(**model.build_kwargs)
    assert clone.state_dict().keys() == model.state_dict().keys()
    assert model.build_kwargs == {**CCNET_TINY, "reduction": 8, "dropout": 0.1}

    def plain(obj) -> bool:
        if isinstance(obj, dict):
            return all(isinstance(k, str) and plain(v) for k, v in obj.items())
        if isinstance(obj, list):
            return all(plain(v) for v in obj)
        return obj is None or isinstance(obj, (bool, int, float, str))

    assert plain(model.build_kwargs)


def test_ccnet_arguments():
    kwargs = {k: v for k, v in CCNET_TINY.items() if k != "recurrence"}
    with pytest.raises(TypeError, match="recurrence"):
        CCNet(**kwargs)  # no default: the original's 0 silently disabled attention
    with pytest.raises(ValueError, match="recurrence"):
        CCNet(**kwargs, recurrence=0)
    with pytest.raises(ValueError, match="dropout"):
        CCNet(**CCNET_TINY | {"dropout": 1.0})
    with pytest.raises(ValueError, match="impl"):
        CCNet(**CCNET_TINY | {"cca_impl": "triton"})
    with pytest.raises(ValueError, match="inter_channels"):
        CCNet(**CCNET_TINY | {"inter_channels": 0})


def _naive_criss_cross(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Loops over one sample: every position attends to its row and column (itself once) with a
    softmax over the dot products (CCNet eq. 1–2)."""
    _, h, w = q.shape
    out = torch.zeros_like(v)
    for y in range(h):
        for x in range(w):
            path = [(y, j) for j in range(w)] + [(i, x) for i in range(h) if i != y]
            energy = torch.stack([q[:, y, x] @ k[:, i, j] for i, j in path])
            weights = energy.softmax(0)
            out[:, y, x] = sum(a * v[:, i, j] for a, (i, j) in zip(weights, path, strict=True))
    return out


def test_ccnet_heads_match_functional_reference():
    torch.manual_seed(0)
    model = CCNet(**CCNET_TINY | {"dropout": 0.0}).double()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    _set_gamma(model, 0.3)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)

    def conv_bn_leaky(t, seq, training):
        conv, bn = seq[0], seq[1]
        t = F.conv2d(t, conv.weight, conv.bias, padding=1)
        if training:  # batch statistics
            t = F.batch_norm(t, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
        else:
            t = F.batch_norm(
                t, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
            )
        return F.leaky_relu(t, 0.01)

    def upsample(t):
        return F.interpolate(t, size=(64, 64), mode="bilinear", align_corners=False)

    head, att = model.head, model.head.rcca.attention
    model.eval()
    with torch.no_grad():
        feats = model.backbone.forward_stages(x)
        c4 = feats["layer4"]
        assert c4.shape[-2:] == (9, 9)  # 64 → 32 → 17 (ceil pool) → 9
        h = conv_bn_leaky(c4, head.conva, False)
        for _ in range(2):  # shared weights in both passes
            q, k, v = (F.conv2d(h, m.weight, m.bias) for m in (att.query, att.key, att.value))
            cca = torch.stack([_naive_criss_cross(*s) for s in zip(q, k, v, strict=True)])
            h = 0.3 * cca + h
        h = conv_bn_leaky(h, head.convb, False)
        z = conv_bn_leaky(torch.cat([c4, h], 1), head.bottleneck[:3], False)
        ref = upsample(F.conv2d(z, head.bottleneck[4].weight, head.bottleneck[4].bias))
        torch.testing.assert_close(model(x)["out"], ref)

        model.train()  # DSN head on layer3, BN with batch statistics
        feats = model.backbone.forward_stages(x)
        aux = conv_bn_leaky(feats["layer3"], model.aux_head, True)
        last = model.aux_head[4]
        ref_aux = upsample(F.conv2d(aux, last.weight, last.bias))
        torch.testing.assert_close(model(x)["aux"], ref_aux)
    assert model.aux_head[0].bias is not None and head.conva[0].bias is None
