"""EPS's loss and SMAF's self-training maths against loops over hand-made tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wsss.models.eps import EPSNet
from wsss.training.eps_losses import eps_loss
from wsss.training.smaf import (
    SelfTrainer,
    batch_class_means,
    mac_loss,
    prototype_weights,
    reactivation_target,
    update_prototypes,
)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=0))
    return e / e.sum(axis=0)


def _eps_reference(logits, saliency, labels, tau, lam):
    """L_cls + L_sal written out per image, class and pixel (algorithms.md §1.2(d))."""
    b, c1, h, w = logits.shape
    k = c1 - 1
    cls, sal = 0.0, 0.0
    for i in range(b):
        scores = logits[i].mean(axis=(1, 2))[:k]
        for c in range(k):
            sig = 1 / (1 + math.exp(-scores[c]))
            cls -= (labels[i, c] * math.log(sig) + (1 - labels[i, c]) * math.log(1 - sig)) / k
        p = _softmax(logits[i])
        s = saliency[i]
        fg, bg_other = np.zeros((h, w)), np.zeros((h, w))
        for c in range(k):
            if not labels[i, c]:
                continue
            hard = np.round(p[c])
            overlap = (hard * np.round(s)).sum() / (hard + 1e-4).sum()  # 1e-4 per pixel
            if overlap > tau:
                fg += p[c]
            else:
                bg_other += p[c]
        estimate = lam * fg + (1 - lam) * (1 - (p[k] + bg_other))
        sal += ((estimate - s) ** 2).sum()
    return cls / b + sal / (b * h * w)


def test_eps_loss_matches_the_formula():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (3, 4, 5, 6))
    saliency = rng.random((3, 5, 6))
    saliency[0] = 0.0  # image 0: nothing salient → its class counts as non-salient
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=np.float64)
    got = eps_loss(
        torch.tensor(logits), torch.tensor(saliency), torch.tensor(labels), tau=0.4, lam=0.5
    )
    want = _eps_reference(logits, saliency, labels, 0.4, 0.5)
    assert got["loss"].item() == pytest.approx(want, rel=1e-6)


def test_eps_overlap_adds_its_epsilon_per_pixel():
    """EPS: o_c = Σ round(p_c)·round(S) / Σ (round(p_c) + 1e-4). On a 100×100 map the
    denominator grows by 1: a class with 4 hard pixels, 2 of them salient, has o = 2/5 = 0.4
    (not salient at τ = 0.45), not 2/4.0001 ≈ 0.5 (salient)."""
    logits = torch.zeros(1, 3, 100, 100)
    logits[0, 0, :2, :2] = 10.0  # class 0 wins 4 pixels
    sal = torch.zeros(1, 100, 100)
    sal[0, :2, 0] = 1.0  # 2 of them salient
    out = eps_loss(logits, sal, torch.tensor([[1.0, 0.0]]), tau=0.45, lam=0.5)
    p = torch.softmax(logits, dim=1)[0]
    # non-salient class 0: fg = 0, bg = 1 − (p_bg + p_0)
    estimate = 0.5 * 0 + 0.5 * (1 - (p[2] + p[0]))
    assert out["sal"].item() == pytest.approx(((estimate - sal[0]) ** 2).mean().item(), rel=1e-6)


def test_eps_loss_resizes_saliency_nearest_and_checks_classes():
    logits = torch.zeros(1, 3, 2, 2)
    sal = torch.zeros(1, 1, 4, 4)
    sal[..., :2, :2] = 1.0  # nearest to 2×2 picks the top-left pixel of each 2×2 block
    out = eps_loss(logits, sal, torch.tensor([[1.0, 0.0]]))
    # p = 1/3 everywhere; class 0 has no hard pixels → overlap 0 → non-salient:
    # Ŝ = 0.5·0 + 0.5·(1 − 2/3) = 1/6; target [[1, 0], [0, 0]]
    want_sal = ((1 / 6 - 1) ** 2 + 3 * (1 / 6) ** 2) / 4
    assert out["sal"].item() == pytest.approx(want_sal)
    with pytest.raises(ValueError, match="labels have"):
        eps_loss(logits, sal, torch.ones(1, 3))


def test_reactivation_target_per_pixel_max_is_one():
    fused = torch.tensor([[[[0.8, 0.1]], [[0.4, 0.05]], [[0.9, 0.9]]]])  # (1, 3, 1, 2)
    labels = torch.tensor([[1.0, 1.0, 0.0]])  # class 2 absent: its map is ignored
    target = reactivation_target(fused, labels, bg_score=0.2)
    assert target.shape == (1, 4, 1, 2)
    np.testing.assert_allclose(target.amax(dim=1).numpy(), 1.0)
    # pixel 0: [0.8, 0.4, 0, 0.2] / 0.8; pixel 1: best fg 0.1 < 0.2 → [0.1, 0.05, 0, 0.2] / 0.2
    np.testing.assert_allclose(target[0, :, 0, 0].numpy(), [1.0, 0.5, 0.0, 0.25])
    np.testing.assert_allclose(target[0, :, 0, 1].numpy(), [0.5, 0.25, 0.0, 1.0])


def test_mac_loss_is_weighted_mse_of_softmax():
    rng = np.random.default_rng(1)
    logits, target = rng.normal(size=(2, 3, 4, 4)), rng.random((2, 3, 4, 4))
    want = 100 * np.mean([(_softmax(logits[i]) - target[i]) ** 2 for i in range(2)])
    got = mac_loss(torch.tensor(logits), torch.tensor(target), weight=100.0)
    assert got.item() == pytest.approx(want)


def test_class_means_prototype_update_and_weights():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(2, 3, 4, 4))
    assign = rng.integers(0, 3, size=(2, 4, 4))
    assign[assign == 2] = 1  # class 2 never assigned
    means, present = batch_class_means(torch.tensor(feats), torch.tensor(assign), 3, 2)
    for c in (0, 1):
        pixels = feats.transpose(0, 2, 3, 1)[assign == c]
        np.testing.assert_allclose(means[c].numpy(), pixels.mean(axis=0), atol=1e-12)
    assert present.tolist() == [True, True, False]
    protos = torch.ones(3, 3, dtype=torch.float64)
    new = update_prototypes(protos, means, present, 0.25)
    np.testing.assert_allclose(new[0].numpy(), 0.75 + 0.25 * means[0].numpy())
    np.testing.assert_allclose(new[2].numpy(), 1.0)  # absent: kept
    weights = prototype_weights(torch.tensor(feats), new)
    f, p = feats[1, :, 2, 3], new[1].numpy()
    cos = f @ p / (np.linalg.norm(f) * np.linalg.norm(p))
    assert weights[1, 1, 2, 3].item() == pytest.approx(max(cos, 0.0))


def test_self_trainer_ema_step_and_target():
    torch.manual_seed(0)
    backbone = {"name": "resnet", "depth": 10, "output_stride": 8, "base_width": 4}
    student = EPSNet(num_fg_classes=2, backbone=backbone, embed_channels=4)
    trainer = SelfTrainer(
        student, denoise="prototype", prototypes=torch.randn(3, 4), ema_decay=0.5
    ).train()
    assert not trainer.ema.training and trainer.student.training
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    ema_before = [p.clone() for p in trainer.ema.parameters()]
    batch = {
        "image": torch.randn(2, 3, 32, 32),
        "labels": torch.tensor([[1.0, 0.0], [1.0, 1.0]]),
        "fused": torch.rand(2, 2, 32, 32),
    }
    loss = trainer(batch)
    assert torch.isfinite(loss) and loss.requires_grad
    for e, s, b in zip(trainer.ema.parameters(), student.parameters(), ema_before, strict=True):
        torch.testing.assert_close(e, 0.5 * b + 0.5 * s)  # decay 0.5
    assert not any(p.requires_grad for p in trainer.ema.parameters())
    with pytest.raises(ValueError, match="initial prototypes"):
        SelfTrainer(student, denoise="prototype")
