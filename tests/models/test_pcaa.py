"""PCAA: bin maths and the CAAM against loop references written from spec §3.6, the network's
outputs, gradients, input alignment and its ResNet-v1c backbone layout."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wsss.models import PCAA, build_seg_model
from wsss.models.backbones import backbone_from_config
from wsss.models.pcaa import normalize_bins
from wsss.models.pcaa_attention import (
    CAAM,
    bin_merge,
    bin_split,
    class_attention,
    local_class_centers,
)
from wsss.training.pcaa_losses import pcaa_loss

TINY_V1C = {
    "name": "resnet",
    "depth": 10,
    "base_width": 8,
    "output_stride": 8,
    "deep_stem": True,
    "contract_dilation": False,
}
TINY = {"num_classes": 3, "backbone": TINY_V1C, "bins": [4], "channels": 16, "aux_channels": 8}


def test_bin_split_layout_and_merge_roundtrip():
    x = torch.randn(2, 3, 6, 8)
    got = bin_split(x, (2, 4))  # bins of 3×2 pixels
    assert got.shape == (2, 8, 6, 3)
    for y in range(6):
        for col in range(8):
            b, p = (y // 3) * 4 + col // 2, (y % 3) * 2 + col % 2
            torch.testing.assert_close(got[:, b, p, :], x[:, :, y, col], rtol=0, atol=0)
    torch.testing.assert_close(bin_merge(got, (2, 4), (6, 8)), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match="not divisible"):
        bin_split(x, (4, 4))


def test_local_class_centers_match_loops():
    gen = torch.Generator().manual_seed(0)
    n, b, p, k, c = 2, 3, 4, 2, 5
    cam, feats = torch.randn(n, b, p, k, generator=gen), torch.randn(n, b, p, c, generator=gen)
    scores = torch.rand(n, b, k, generator=gen)
    got = local_class_centers(cam.double(), feats.double(), scores.double())
    for i in range(n):
        for j in range(b):
            for cls in range(k):
                weights = [math.exp(cam[i, j, q, cls]) for q in range(p)]
                total = sum(weights)
                for ch in range(c):
                    ref = sum(w / total * float(feats[i, j, q, ch]) for q, w in enumerate(weights))
                    assert got[i, j, cls, ch].item() == pytest.approx(
                        ref * float(scores[i, j, cls])
                    )


@pytest.mark.parametrize("scale", [None, 0.5])
def test_class_attention_rows_sum_to_one(scale):
    gen = torch.Generator().manual_seed(1)
    q, key = torch.randn(2, 4, 6, 3, generator=gen), torch.randn(2, 4, 5, 3, generator=gen)
    value = torch.randn(2, 1, 5, 7, generator=gen)  # global centres: shared by the 4 bins
    out, affinity = class_attention(q, key, value, scale=scale)
    assert affinity.shape == (2, 4, 6, 5) and out.shape == (2, 4, 6, 7)
    torch.testing.assert_close(affinity.sum(-1), torch.ones(2, 4, 6))
    assert (affinity > 0).all()
    energy = torch.einsum("nbpd,nbkd->nbpk", q, key) * (1.0 if scale is None else scale)
    weights = energy.exp() / energy.exp().sum(-1, keepdim=True)
    torch.testing.assert_close(affinity, weights)
    torch.testing.assert_close(out, torch.einsum("nbpk,nkd->nbpd", weights, value[:, 0]))


def _caam_reference(m: CAAM, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spec §3.6 steps 1–8, bin by bin with explicit slices (eval mode: dropout off, BN with
    running statistics)."""
    n, c, h, w = x.shape
    (bh, bw), k = m.bins, m.cam_conv.out_channels
    rh, rw = h // bh, w // bw
    cam = torch.einsum("nchw,kc->nkhw", x, m.cam_conv.weight[:, :, 0, 0])
    cam = cam + m.cam_conv.bias.view(1, k, 1, 1)
    cams, feats, logits = [], [], torch.zeros(n, k, bh, bw, dtype=x.dtype)
    for i in range(bh):
        for j in range(bw):
            window = (slice(None), slice(None), slice(i * rh, (i + 1) * rh))
            window += (slice(j * rw, (j + 1) * rw),)
            cams.append(cam[window].flatten(2))  # (n, k, P), pixels row-major
            feats.append(x[window].flatten(2))  # (n, c, P)
            logits[:, :, i, j] = cam[window].mean(dim=(2, 3))
    local = []
    for b in range(bh * bw):
        s = torch.sigmoid(logits[:, :, b // bw, b % bw])  # (n, k)
        local.append(torch.einsum("nkp,ncp->nkc", cams[b].softmax(-1), feats[b]) * s[..., None])
    local = torch.stack(local, 1)  # (n, B, k, c)
    mix = torch.einsum("nbkc,ab->nakc", local, m.graph.node_mix.weight[:, :, 0, 0])
    local = F.relu(mix + local) @ m.graph.channel_map.weight.T
    glob = torch.einsum("nbkc,b->nkc", local, m.fuse.weight[0, :, 0, 0]) + m.fuse.bias
    glob = F.relu(glob)
    out = torch.zeros(n, m.query.out_features, h, w, dtype=x.dtype)
    for b in range(bh * bw):
        q = feats[b].transpose(1, 2) @ m.query.weight.T + m.query.bias  # (n, P, d)
        key = local[:, b] @ m.key.weight.T + m.key.bias  # (n, k, d)
        val = glob @ m.value.weight.T + m.value.bias
        att = (q @ key.transpose(1, 2)).softmax(-1) @ val  # (n, P, d)
        i, j = divmod(b, bw)
        out[:, :, i * rh : (i + 1) * rh, j * rw : (j + 1) * rw] = att.transpose(1, 2).reshape(
            n, -1, rh, rw
        )
    conv, bn = m.project[0], m.project[1]
    y = torch.einsum("ndhw,cd->nchw", out, conv.weight[:, :, 0, 0])
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return x + F.relu(y), logits


@pytest.mark.parametrize("bins", [(2, 2), (1, 3), (3, 2)])
def test_caam_matches_spec_reference(bins):
    torch.manual_seed(0)
    m = CAAM(5, 3, bins, attention_channels=4, cam_dropout=0.1, scale_attention=False).double()
    bn = m.project[1]
    bn.running_mean.uniform_(-0.3, 0.3)
    bn.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    m.eval()
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        y, logits = m(x)
        ref_y, ref_logits = _caam_reference(m, x)
    assert y.shape == x.shape and logits.shape == (2, 3, *bins)
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(y, ref_y)
    assert (y - x).abs().max() > 1e-3  # the attention branch is not a no-op


def test_pcaa_train_outputs_loss_and_every_parameter_learns():
    torch.manual_seed(0)
    model = PCAA(**TINY | {"bins": [[4, 4], 2]}).train()
    assert model.size_divisor == 32
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert set(out) == {"out", "aux", "bin_logits"}
    assert out["out"].shape == out["aux"].shape == (2, 3, 64, 64)
    assert [tuple(t.shape) for t in out["bin_logits"]] == [(2, 3, 4, 4), (2, 3, 2, 2)]
    target = torch.randint(0, 3, (2, 64, 64))
    target[:, :5] = 255
    loss = pcaa_loss(out, target)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"


def test_pcaa_eval_aligns_input_like_predict_whole():
    torch.manual_seed(0)
    model = build_seg_model("pcaa", **TINY).eval()
    x = torch.randn(1, 3, 40, 50)  # not a multiple of 32: resized to 64×64 and back
    with torch.no_grad():
        out = model(x)
        aligned = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
        logits, _ = model.head(model.backbone(aligned))
        ref = F.interpolate(logits, size=(40, 50), mode="bilinear", align_corners=False)
    assert set(out) == {"out"}
    torch.testing.assert_close(out["out"], ref)
    clone = PCAA(**model.build_kwargs).eval()
    clone.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(clone(x)["out"], out["out"])


def test_pcaa_arguments_and_divisibility_error():
    assert normalize_bins([4, (2, 3)]) == [[4, 4], [2, 3]]
    model = PCAA(**TINY)
    assert model.build_kwargs["bins"] == [[4, 4]]
    assert model.build_kwargs["attention_channels"] == 8
    assert model.aux_head is not None and PCAA(**TINY | {"aux_channels": None}).aux_head is None
    for bad in ({"bins": []}, {"bins": [0]}, {"bins": [[1, 2, 3]]}):
        with pytest.raises(ValueError, match="bin"):
            PCAA(**TINY | bad)
    with pytest.raises(ValueError, match="dropout"):
        PCAA(**TINY | {"cam_dropout": 1.0})
    with pytest.raises(ValueError, match="channels"):
        PCAA(**TINY | {"channels": 0})
    wrong = PCAA(**TINY | {"size_divisor": 8}).eval()  # 8 px → 1 feature, not 4 bins
    with pytest.raises(ValueError, match="bin grid"), torch.no_grad():
        wrong(torch.randn(1, 3, 40, 40))


def test_v1c_backbone_layout_for_pcaa():
    """ResNet-101-v1c at OS 8 with multi-grid (1, 2, 4), as PCAA's ADE20K script builds it."""
    config = {
        "name": "resnet",
        "depth": 101,
        "deep_stem": True,
        "output_stride": 8,
        "contract_dilation": False,
        "multi_grid": [1, 2, 4],
    }
    net = backbone_from_config(config)
    stem = [m for m in net.conv1 if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.stride[0]) for m in stem] == [
        (3, 32, 2),
        (32, 32, 1),
        (32, 64, 1),
    ]
    assert net.maxpool.ceil_mode is False
    assert {b.conv2.dilation[0] for b in net.layer3} == {2} and len(net.layer3) == 23
    assert [b.conv2.dilation[0] for b in net.layer4] == [4, 8, 16]
    assert net.layer3[0].conv2.stride[0] == net.layer4[0].conv2.stride[0] == 1
    assert net.layer2[0].conv2.stride[0] == 2 and net.layer2[0].conv1.stride[0] == 1
    assert net.stage_channels["layer3"] == 1024 and net.stage_channels["layer4"] == 2048
