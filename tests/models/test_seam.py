"""PCM, PRCM and the guide map against loops written from the formulas; PCMNet shapes."""

import math

import pytest
import torch
from torch import nn

from tests.models.conftest import TINY_RESNET_W8
from wsss.models import build_cam_model
from wsss.models.seam import guide_map, pixel_correlation, pixel_region_correlation

torch.manual_seed(0)
BACKBONE = {**TINY_RESNET_W8, "output_stride": 8}
STAGES = ("layer2", "layer3", "layer4")


def test_guide_map_by_hand():
    cam = torch.zeros(1, 3, 1, 3)
    cam[0, 1] = torch.tensor([2.0, 1.0, -1.0])  # class 1: peak 2
    cam[0, 2] = torch.tensor([1.0, 4.0, 0.0])  # class 2: peak 4
    g = guide_map(cam)[0, :, 0]
    eps = 1e-5
    n1 = [(2 - eps) / (2 + eps), (1 - eps) / (2 + eps), 0.0]
    n2 = [(1 - eps) / (4 + eps), (4 - eps) / (4 + eps), 0.0]
    fg_max = [max(a, b) for a, b in zip(n1, n2, strict=True)]
    expected = torch.tensor(
        [
            [1 - m for m in fg_max],
            [a if a >= b else 0.0 for a, b in zip(n1, n2, strict=True)],
            [b if b >= a else 0.0 for a, b in zip(n1, n2, strict=True)],
        ]
    )
    torch.testing.assert_close(g, expected)
    assert g[1:, 2].tolist() == [0.0, 0.0]  # a tie (both 0) keeps both


def test_pixel_correlation_matches_loops():
    guide = torch.rand(2, 3, 2, 3, dtype=torch.float64)
    emb = torch.randn(2, 4, 2, 3, dtype=torch.float64)
    out = pixel_correlation(guide, emb)
    eps = 1e-5
    for b in range(2):
        f = emb[b].reshape(4, -1)
        f = f / (f.norm(dim=0, keepdim=True) + eps)
        n = f.shape[1]
        aff = [[max(0.0, float(f[:, i] @ f[:, j])) for j in range(n)] for i in range(n)]
        col = [sum(aff[i][j] for i in range(n)) + eps for j in range(n)]
        g = guide[b].reshape(3, -1)
        for c in range(3):
            for j in range(n):
                expected = sum(float(g[c, i]) * aff[i][j] / col[j] for i in range(n))
                assert math.isclose(float(out[b, c].reshape(-1)[j]), expected, rel_tol=1e-9)
    # affinity columns sum to 1 (up to ε): a constant guide stays (almost) constant
    flat = pixel_correlation(torch.ones(1, 1, 2, 3, dtype=torch.float64), emb[:1])
    torch.testing.assert_close(flat, torch.ones_like(flat), atol=1e-4, rtol=0)


@pytest.mark.parametrize("layout", ["faithful", "transpose"])
def test_prcm_rows_are_softmax_and_match_loops(layout):
    n, c, d, e, h, w = 2, 3, 5, 4, 2, 3
    guide = torch.rand(n, c, h, w, dtype=torch.float64)
    feats = torch.randn(n, d, h, w, dtype=torch.float64)
    values = torch.rand(n, e, h, w, dtype=torch.float64)
    key_conv = nn.Conv2d(d, e, 1, bias=False).double()
    out = pixel_region_correlation(guide, feats, values, key_conv, layout=layout)
    assert out.shape == (n, c, h, w)
    torch.testing.assert_close(out.flatten(2).sum(-1), torch.ones(n, c, dtype=torch.float64))

    wk = key_conv.weight[:, :, 0, 0]
    for b in range(n):
        p = torch.softmax(guide[b].reshape(c, -1), dim=-1)
        ctx = [sum(p[k, i] * feats[b].reshape(d, -1)[:, i] for i in range(h * w)) for k in range(c)]
        keys = torch.stack([torch.relu(wk @ v) for v in ctx], dim=1)  # (E, C) as the conv lays it
        if layout == "transpose":
            rows = keys.T
        else:  # the released code reads the (E, C) memory as (C, E)
            rows = keys.reshape(-1)[: c * e].reshape(c, e)
        scores = rows @ values[b].reshape(e, -1) / math.sqrt(c)
        torch.testing.assert_close(out[b].reshape(c, -1), torch.softmax(scores, dim=-1))


def test_layouts_differ_and_bad_layout():
    torch.manual_seed(0)  # about 1 % of draws give all-zero keys, where the two layouts agree
    guide, feats = torch.rand(1, 3, 2, 2), torch.randn(1, 4, 2, 2)
    values, conv = torch.rand(1, 5, 2, 2), nn.Conv2d(4, 5, 1, bias=False)
    a = pixel_region_correlation(guide, feats, values, conv, layout="faithful")
    b = pixel_region_correlation(guide, feats, values, conv, layout="transpose")
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="prcm_layout"):
        pixel_region_correlation(guide, feats, values, conv, layout="bogus")


@pytest.mark.parametrize("method", ["seam", "cpn"])
def test_pcmnet_outputs(method):
    net = build_cam_model(
        method,
        num_fg_classes=4,
        backbone=BACKBONE,
        feature_stages=STAGES,
        embed_channels=(8, 8, 16),
        prcm=method == "cpn",
    ).eval()
    x = torch.randn(2, 3, 40, 48)
    cam, cam_rv = net(x)
    assert cam.shape == cam_rv.shape == (2, 5, 5, 6)
    assert (cam_rv >= 0).all()  # PCM of a non-negative guide (and PRCM ⊙ guide) stays ≥ 0
    maps = net.cams(x)
    torch.testing.assert_close(maps, cam_rv[:, 1:])
    assert (net.f10 is not None) == (method == "cpn")
    cam.sum().backward()  # PCM's inputs are detached: only the backbone and fc8 get this
    assert net.f9.weight.grad is None


def test_pcmnet_rejects_unknown_stages():
    with pytest.raises(ValueError, match="feature_stages"):
        build_cam_model("seam", num_fg_classes=2, backbone=BACKBONE)  # conv4.. on a ResNet
