"""PCAA losses: bin labels on hand-made masks, the focal loss against its formula in numpy, and
the total loss against a term-by-term reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsss.training.losses import ohem_cross_entropy
from wsss.training.pcaa_losses import bin_labels, focal_loss, pcaa_loss

IGNORE = 255


def test_bin_labels_hand_made_mask():
    # 2×2 bins of 20×10 = 200 pixels each; 1 pixel = 0.005 (ignore band), 2 pixels = 0.01
    mask = np.zeros((40, 20), dtype=np.int64)
    mask[0, 0] = 1  # bin (0,0): class 1 at 0.005 → ignored; class 2 at 0.01 → positive
    mask[1, 0:2] = 2
    mask[0:10, 10:20] = 1  # bin (0,1): half class 1, half ignore → class 1 only
    mask[10:20, 10:20] = IGNORE
    mask[20:40, 0:10] = IGNORE  # bin (1,0): 199 ignore + one class-0 pixel: 0.005 → ignored
    mask[39, 9] = 0
    mask[20:40, 10:20] = 2  # bin (1,1): class 2 and 3 pixels of class 0 (0.015 → positive)
    mask[20, 10:13] = 0
    got = bin_labels(torch.from_numpy(mask)[None], 3, (2, 2))
    expected = np.array(
        [
            [[1, 0], [IGNORE, 1]],  # class 0 per bin
            [[IGNORE, 1], [0, 0]],  # class 1
            [[1, 0], [0, 1]],  # class 2
        ],
        dtype=np.float32,
    )
    assert got.shape == (1, 3, 2, 2) and got.dtype == torch.float32
    np.testing.assert_array_equal(got[0].numpy(), expected)
    # with a lower threshold the 0.005 entries become positives
    lower = bin_labels(torch.from_numpy(mask)[None], 3, (2, 2), threshold=0.004)[0].numpy()
    assert lower[1, 0, 0] == 1 and lower[0, 1, 0] == 1


def test_bin_labels_uneven_bins_follow_adaptive_pooling():
    # 1×3 mask on a 1×2 grid: adaptive bins cover columns [0, 2) and [1, 3)
    got = bin_labels(torch.tensor([[[0, 1, 1]]]), 2, (1, 2))
    np.testing.assert_array_equal(got[0, :, 0].numpy(), [[1, 0], [1, 1]])


def test_bin_labels_rejects_out_of_range():
    with pytest.raises(ValueError, match="target values"):
        bin_labels(torch.tensor([[[0, 3]]]), 3, (1, 1))
    with pytest.raises(ValueError, match="target values"):
        bin_labels(torch.tensor([[[0, -1]]]), 3, (1, 1))


def _numpy_focal(logits: np.ndarray, labels: np.ndarray, gamma: float) -> float:
    """Spec §2.4 literally: per class, over its non-ignored entries, mean of
    (1 - p_t)^γ · BCE(p, t) with p = sigmoid(z); then the mean over the classes present."""
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    per_class = []
    for k in range(logits.shape[1]):
        pk, tk = p[:, k].ravel(), labels[:, k].ravel()
        keep = tk != IGNORE
        if not keep.any():
            continue
        pk, tk = pk[keep], tk[keep]
        bce = -(tk * np.log(pk) + (1 - tk) * np.log(1 - pk))
        pt = np.where(tk == 1, pk, 1 - pk)
        per_class.append(np.mean((1 - pt) ** gamma * bce))
    return float(np.mean(per_class))


@pytest.mark.parametrize("gamma", [2.0, 0.0, 1.5])
def test_focal_loss_matches_formula(gamma):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 2, 3, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, 2, (3, 4, 2, 3), generator=gen).double()
    labels[torch.rand(labels.shape, generator=gen) < 0.3] = IGNORE
    labels[:, 2] = IGNORE  # a class with nothing to learn is left out, not NaN
    got = focal_loss(logits.requires_grad_(), labels, gamma=gamma)
    assert got.item() == pytest.approx(_numpy_focal(logits.detach().numpy(), labels.numpy(), gamma))
    got.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[:, 2].abs().sum() == 0


def test_focal_loss_all_ignored_is_zero_and_attached():
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    loss = focal_loss(logits, torch.full((1, 2, 2, 2), float(IGNORE)))
    assert loss.item() == 0.0
    loss.backward()
    with pytest.raises(ValueError, match="differ"):
        focal_loss(logits, torch.zeros(1, 2, 2, 1))


def _naive_bin_labels(mask: np.ndarray, k: int, bins: tuple[int, int]) -> np.ndarray:
    n, h, w = mask.shape
    rh, rw = h // bins[0], w // bins[1]
    out = np.zeros((n, k, *bins))
    for i in range(n):
        for by in range(bins[0]):
            for bx in range(bins[1]):
                block = mask[i, by * rh : (by + 1) * rh, bx * rw : (bx + 1) * rw]
                for c in range(k):
                    q = np.mean(block == c)
                    out[i, c, by, bx] = 0 if q == 0 else (IGNORE if q < 0.01 else 1)
    return out


@pytest.mark.parametrize(
    ("aux_weight", "cls_weight", "ohem"),
    [(0.4, 1.0, None), (0.0, 2.5, None), (0.4, 0.0, {"thresh": 0.7, "min_kept": 20})],
)
def test_pcaa_loss_is_the_weighted_sum(aux_weight, cls_weight, ohem):
    gen = torch.Generator().manual_seed(3)
    k = 4
    outputs = {
        "out": torch.randn(2, k, 8, 12, generator=gen, dtype=torch.float64),
        "aux": torch.randn(2, k, 8, 12, generator=gen, dtype=torch.float64),
        "bin_logits": (
            torch.randn(2, k, 2, 2, generator=gen, dtype=torch.float64),
            torch.randn(2, k, 4, 3, generator=gen, dtype=torch.float64),
        ),
    }
    target = torch.randint(0, k, (2, 8, 12), generator=gen)
    target[0, :3] = IGNORE
    got = pcaa_loss(outputs, target, aux_weight=aux_weight, cls_weight=cls_weight, ohem=ohem)
    if ohem is None:
        main = F.cross_entropy(outputs["out"], target, ignore_index=IGNORE)
    else:
        main = ohem_cross_entropy(outputs["out"], target, thresh=0.7, min_kept=20)
    aux = F.cross_entropy(outputs["aux"], target, ignore_index=IGNORE)
    focal = np.mean(
        [
            _numpy_focal(z.numpy(), _naive_bin_labels(target.numpy(), k, tuple(z.shape[-2:])), 2)
            for z in outputs["bin_logits"]
        ]
    )
    expected = main.item() + aux_weight * aux.item() + cls_weight * focal
    assert got.item() == pytest.approx(expected)


def test_pcaa_loss_without_bin_logits_is_segmentation_ce():
    gen = torch.Generator().manual_seed(4)
    out = torch.randn(1, 3, 5, 5, generator=gen)
    target = torch.randint(0, 3, (1, 5, 5), generator=gen)
    got = pcaa_loss({"out": out}, target)
    torch.testing.assert_close(got, F.cross_entropy(out, target))
    with pytest.raises(ValueError, match="cls_weight"):
        pcaa_loss({"out": out}, target, cls_weight=-1.0)
