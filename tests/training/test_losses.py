"""OHEM cross-entropy and the segmentation loss against a per-pixel pure-Python reference."""

from __future__ import annotations

import math

import pytest
import torch

from wsss.training.losses import ohem_cross_entropy, segmentation_loss

IGNORE = 255


def _pixels(logits: torch.Tensor, target: torch.Tensor) -> list[tuple[tuple, float, float]]:
    """Every valid pixel as ``((b, y, x), ground-truth softmax probability, cross-entropy)``,
    from a log-sum-exp written out by hand in float64."""
    z = logits.detach().double().numpy()
    t = target.numpy()
    out = []
    b, _, h, w = z.shape
    for i in range(b):
        for y in range(h):
            for x in range(w):
                label = int(t[i, y, x])
                if label == IGNORE:
                    continue
                row = z[i, :, y, x]
                top = max(row)
                lse = top + math.log(sum(math.exp(v - top) for v in row))
                out.append(((i, y, x), math.exp(row[label] - lse), lse - row[label]))
    return out


def _naive_ohem(logits, target, thresh, min_kept):
    """CCNet's rule by hand: sort the GT probabilities, raise the threshold to the min_kept-th
    smallest if fewer than min_kept are at or below ``thresh``. Returns (loss, kept positions)."""
    pixels = _pixels(logits, target)
    if min_kept >= len(pixels):
        kept = pixels
    else:
        threshold = thresh
        ranked = sorted(p for _, p, _ in pixels)
        if min_kept > 0 and ranked[min_kept - 1] > thresh:
            threshold = ranked[min_kept - 1]
        kept = [px for px in pixels if px[1] <= threshold]
    loss = sum(ce for _, _, ce in kept) / len(kept) if kept else 0.0
    return loss, {pos for pos, _, _ in kept}


def _naive_ce(logits, target):
    pixels = _pixels(logits, target)
    return sum(ce for _, _, ce in pixels) / len(pixels)


def _batch(seed: int, *, shape=(2, 4, 6, 7), ignored: int = 10):
    gen = torch.Generator().manual_seed(seed)
    b, k, h, w = shape
    logits = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    target = torch.randint(0, k, (b, h, w), generator=gen)
    flat = target.view(-1)
    flat[torch.randperm(flat.numel(), generator=gen)[:ignored]] = IGNORE
    return logits, target


@pytest.mark.parametrize(
    "thresh, min_kept, branch",
    [
        (0.7, 5, "thresh"),  # plenty of pixels at or below 0.7: the threshold stays 0.7
        (0.05, 30, "min_kept"),  # few below 0.05: the threshold rises to the 30th smallest
        (0.7, 0, "thresh"),
        (0.7, 74, "all"),  # min_kept == number of valid pixels (84 − 10): keep every valid one
        (0.1, 500, "all"),
    ],
)
def test_ohem_matches_naive_reference(thresh, min_kept, branch):
    logits, target = _batch(0)
    loss = ohem_cross_entropy(logits, target, thresh=thresh, min_kept=min_kept)
    ref, kept = _naive_ohem(logits, target, thresh, min_kept)
    probs = sorted(p for _, p, _ in _pixels(logits, target))
    n_below = sum(p <= thresh for p in probs)
    if branch == "thresh":
        assert min_kept <= n_below < len(probs)  # the case is what it claims to be
    elif branch == "min_kept":
        assert n_below < min_kept and len(kept) == min_kept
    else:
        assert len(kept) == len(probs) and ref == pytest.approx(_naive_ce(logits, target))
    assert loss.item() == pytest.approx(ref, rel=1e-9)

    # only the kept pixels get a gradient
    loss.backward()
    touched = {tuple(i.tolist()) for i in (logits.grad.abs().sum(1) > 0).nonzero()}
    assert touched == kept


def test_ohem_ignores_ignored_pixels_even_when_easy_or_hard():
    logits, target = _batch(1, ignored=0)
    # make two pixels' GT classes very unlikely (hard), then ignore them
    for b, y, x in [(0, 0, 0), (1, 3, 4)]:
        logits.data[b, :, y, x] = 0.0
        logits.data[b, (int(target[b, y, x]) + 1) % 4, y, x] = 20.0
        target[b, y, x] = IGNORE
    loss = ohem_cross_entropy(logits, target, thresh=0.6, min_kept=10)
    ref, kept = _naive_ohem(logits, target, 0.6, 10)
    assert (0, 0, 0) not in kept and (1, 3, 4) not in kept
    assert loss.item() == pytest.approx(ref, rel=1e-9)


def test_ohem_nothing_kept_is_zero_and_attached():
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    logits.data[:, 0] = 10.0  # every pixel is easy: p ≈ 1 > thresh
    loss = ohem_cross_entropy(logits, target, thresh=0.5, min_kept=0)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    everything_ignored = torch.full((1, 2, 2), IGNORE)
    assert ohem_cross_entropy(logits, everything_ignored, thresh=0.5, min_kept=4).item() == 0.0


def test_ohem_float32_matches_float64():
    logits, target = _batch(2)
    ref, _ = _naive_ohem(logits, target, 0.3, 20)
    loss = ohem_cross_entropy(logits.detach().float(), target, thresh=0.3, min_kept=20)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref, rel=1e-5)


def test_ohem_bad_arguments():
    logits, target = _batch(3)
    with pytest.raises(ValueError, match="thresh"):
        ohem_cross_entropy(logits, target, thresh=1.5, min_kept=1)
    with pytest.raises(ValueError, match="min_kept"):
        ohem_cross_entropy(logits, target, thresh=0.5, min_kept=-1)
    with pytest.raises(ValueError, match="target"):
        ohem_cross_entropy(logits, target[:, :3], thresh=0.5, min_kept=1)


@pytest.mark.parametrize("ohem", [None, {"thresh": 0.4, "min_kept": 25}])
@pytest.mark.parametrize("aux_weight", [0.0, 0.4])
def test_segmentation_loss_adds_weighted_plain_aux(ohem, aux_weight):
    out, target = _batch(4)
    aux, _ = _batch(5)
    loss = segmentation_loss({"out": out, "aux": aux}, target, aux_weight=aux_weight, ohem=ohem)
    main = (
        _naive_ce(out, target)
        if ohem is None
        else _naive_ohem(out, target, ohem["thresh"], ohem["min_kept"])[0]
    )
    # the auxiliary branch is always plain CE over every valid pixel, never OHEM
    assert loss.item() == pytest.approx(main + aux_weight * _naive_ce(aux, target), rel=1e-9)
    without_aux = segmentation_loss({"out": out}, target, aux_weight=aux_weight, ohem=ohem)
    assert without_aux.item() == pytest.approx(main, rel=1e-9)
    loss.backward()
    assert (aux.grad is not None and aux.grad.abs().sum() > 0) == (aux_weight > 0)


def test_segmentation_loss_bad_arguments():
    out, target = _batch(6)
    with pytest.raises(ValueError, match="aux_weight"):
        segmentation_loss({"out": out}, target, aux_weight=-0.1, ohem=None)
    with pytest.raises(ValueError, match="min_kept"):
        segmentation_loss({"out": out}, target, aux_weight=0.0, ohem={"thresh": 0.7})
