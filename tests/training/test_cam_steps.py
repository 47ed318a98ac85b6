"""The CAM methods' step losses against references: the views each method makes, built here with
naive loops (bilinear resizing with ``align_corners=True``, masking, pairing), fed through the
same stub network, and the soft-margin formula written out."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wsss.training.cam_losses import cpn_loss, seam_loss
from wsss.training.cam_steps import (
    cpn_step_loss,
    eps_step_loss,
    multilabel_step_loss,
    paired_multilabel_step_loss,
    seam_step_loss,
)
from wsss.training.eps_losses import eps_loss


def naive_bilinear_ac(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, C, h, w) → (N, C, *size) bilinear with align_corners=True: output pixel i reads the
    input at i · (in − 1) / (out − 1), corners on corners."""
    n, c, h, w = maps.shape
    out = np.zeros((n, c, *size))
    for oy in range(size[0]):
        sy = oy * (h - 1) / (size[0] - 1) if size[0] > 1 else 0.0
        y0 = min(int(math.floor(sy)), h - 1)
        y1, fy = min(y0 + 1, h - 1), sy - y0
        for ox in range(size[1]):
            sx = ox * (w - 1) / (size[1] - 1) if size[1] > 1 else 0.0
            x0 = min(int(math.floor(sx)), w - 1)
            x1, fx = min(x0 + 1, w - 1), sx - x0
            out[:, :, oy, ox] = (1 - fy) * (
                (1 - fx) * maps[:, :, y0, x0] + fx * maps[:, :, y0, x1]
            ) + fy * ((1 - fx) * maps[:, :, y1, x0] + fx * maps[:, :, y1, x1])
    return out


def naive_soft_margin(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over samples of −1/K Σ_k [y log σ(s) + (1 − y) log σ(−s)]."""
    total = 0.0
    for s_row, y_row in zip(scores, labels, strict=True):
        terms = [
            y * math.log(1 / (1 + math.exp(-s))) + (1 - y) * math.log(1 / (1 + math.exp(s)))
            for s, y in zip(s_row, y_row, strict=True)
        ]
        total += -sum(terms) / len(terms)
    return total / len(scores)


class Recorder(torch.nn.Module):
    """A stub network: a fixed 1×1 convolution (K + 1 maps), its square as the PCM map, both at
    ``down``× lower resolution; it records every input it sees."""

    def __init__(self, classes: int = 3, down: int = 1) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, classes + 1, 1).double()
        with torch.no_grad():
            g = torch.Generator().manual_seed(1)
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
            self.conv.bias.copy_(torch.randn(self.conv.bias.shape, generator=g))
        self.down, self.seen = down, []

    def forward(self, x: torch.Tensor):
        self.seen.append(x.detach().clone())
        cam = torch.nn.functional.avg_pool2d(self.conv(x), self.down)
        return cam, cam**2


def _batch(n=2, size=(9, 11), classes=3, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    labels = torch.zeros(n, classes, dtype=torch.float64)
    labels[:, 0] = 1
    labels[0, 2] = 1
    return {"image": torch.randn(n, 3, *size, generator=g, dtype=torch.float64), "labels": labels}


def test_multilabel_and_paired_steps_match_the_soft_margin_formula():
    scores = torch.tensor([[0.3, -1.2, 2.0], [-0.5, 0.1, 0.7]], dtype=torch.float64)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    got = multilabel_step_loss(lambda x: x, {"image": scores, "labels": labels})
    assert float(got) == pytest.approx(naive_soft_margin(scores.numpy(), labels.numpy()), 1e-12)

    # CDA: (B, 2, ...) pairs go through one pass as 2B rows, original before its pasted copy
    pair_scores = torch.stack([scores, -scores], dim=1)  # (2, 2, 3)
    pair_labels = torch.stack([labels, 1 - labels], dim=1)
    seen = []
    got = paired_multilabel_step_loss(
        lambda x: seen.append(x) or x, {"image": pair_scores, "labels": pair_labels}
    )
    rows = [scores[0], -scores[0], scores[1], -scores[1]]
    assert torch.equal(seen[0], torch.stack(rows))
    row_labels = np.stack([labels[0], 1 - labels[0], labels[1], 1 - labels[1]])
    expected = naive_soft_margin(np.stack(rows), row_labels)
    assert float(got) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("view_scale", [0.5, 0.3])
def test_seam_step_feeds_the_crop_and_its_ac_true_downscaled_copy(view_scale):
    net, batch = Recorder(), _batch(size=(10, 13))
    got = seam_step_loss(net, batch, view_scale=view_scale)
    x = batch["image"].numpy()
    size = (math.floor(10 * view_scale), math.floor(13 * view_scale))
    small = naive_bilinear_ac(x, size)
    assert torch.equal(net.seen[0], batch["image"])
    np.testing.assert_allclose(net.seen[1].numpy(), small, rtol=1e-12, atol=1e-12)
    ref_net = Recorder()
    cam1, rv1 = ref_net(batch["image"])
    cam2, rv2 = ref_net(torch.from_numpy(small))
    expected = seam_loss(cam1, rv1, cam2, rv2, batch["labels"])
    assert set(got) == {"cls", "er", "ecr", "rvmin", "loss"}
    for key, value in expected.items():
        assert float(got[key].detach()) == pytest.approx(
            float(value.detach()), rel=1e-9, abs=1e-12
        ), key


def test_cpn_step_masks_the_views_and_upsamples_their_maps_to_the_crop():
    net, batch = Recorder(down=2), _batch(size=(8, 10))
    keep = (torch.rand(2, 1, 8, 10, generator=torch.Generator().manual_seed(3)) > 0.5).double()
    ratio = keep.mean((1, 2, 3))
    batch.update(cp_mask=keep, cp_ratio=ratio)
    got = cpn_step_loss(net, batch)
    x, m = batch["image"].numpy(), keep.numpy()
    views = [x, x * m, x * (1 - m)]
    for seen, view in zip(net.seen, views, strict=True):
        np.testing.assert_array_equal(seen.numpy(), view)
    ref_net = Recorder(down=2)
    maps = []
    for view in views:
        cam, rv = ref_net(torch.from_numpy(view))
        up = [torch.from_numpy(naive_bilinear_ac(t.detach().numpy(), (8, 10))) for t in (cam, rv)]
        maps.append(tuple(up))
    expected = cpn_loss(maps, batch["labels"], ratio)
    assert set(got) == {"cls", "tcp", "cpcr", "loss"}
    for key, value in expected.items():
        assert float(got[key].detach()) == pytest.approx(
            float(value.detach()), rel=1e-9, abs=1e-12
        ), key


def test_eps_step_passes_logits_saliency_and_settings():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 4, 6, 6, generator=g)
    batch = {
        "image": logits,
        "saliency": torch.rand(2, 12, 12, generator=g),
        "labels": torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
    }
    got = eps_step_loss(lambda x: {"logits": x}, batch, tau=0.3, lam=0.7)
    expected = eps_loss(logits, batch["saliency"], batch["labels"], tau=0.3, lam=0.7)
    assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in expected.items()}
    default = eps_loss(logits, batch["saliency"], batch["labels"])
    assert float(got["loss"]) != float(default["loss"])  # tau and lam reach the loss
