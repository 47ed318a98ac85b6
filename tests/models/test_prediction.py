"""Tests for wsss.models.prediction.multiscale_probs against a naive scale/flip loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsss.models.prediction import multiscale_probs

NUM_CLASSES = 4


class _Asymmetric(nn.Module):
    """A fixed conv plus a left-to-right ramp: its logits are not mirror-symmetric."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, NUM_CLASSES, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen))
            self.conv.bias.copy_(torch.randn(NUM_CLASSES, generator=gen))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        ramp = torch.linspace(-2.0, 2.0, x.shape[-1])
        weights = torch.arange(NUM_CLASSES, dtype=torch.float32) - 1.5
        out = self.conv(x) + weights.view(1, -1, 1, 1) * ramp.view(1, 1, 1, -1)
        # Downsample and upsample back, as a real segmentation network does.
        small = F.avg_pool2d(out, 2, ceil_mode=True)
        up = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return {"out": up}


def _naive(
    model: nn.Module, image: torch.Tensor, scales: list[float], flip: bool, unflip: bool = True
) -> torch.Tensor:
    _, h, w = image.shape
    passes = []
    for s in scales:
        x = F.interpolate(
            image[None], size=(round(h * s), round(w * s)), mode="bilinear", align_corners=False
        )
        variants = [(x, False)] + ([(x.flip(-1), True)] if flip else [])
        for inp, flipped in variants:
            logits = model(inp)["out"]
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
            probs = torch.softmax(logits, dim=1)[0]
            if flipped and unflip:
                probs = probs.flip(-1)
            passes.append(probs)
    return torch.stack(passes).mean(0)


@pytest.mark.parametrize(
    ("scales", "flip"),
    [([1.0], False), ([1.0], True), ([1.0, 0.5, 1.5], True), ([0.75, 1.25], False)],
)
def test_multiscale_probs_matches_naive_loop(scales: list[float], flip: bool) -> None:
    model = _Asymmetric().eval()
    image = torch.randn(3, 13, 18, generator=torch.Generator().manual_seed(1))
    got = multiscale_probs(model, image, scales=scales, flip=flip)
    assert got.shape == (NUM_CLASSES, 13, 18) and got.dtype == torch.float32
    torch.testing.assert_close(got, _naive(model, image, scales, flip), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.sum(0), torch.ones(13, 18), atol=1e-5, rtol=0)
    assert (got >= 0).all()


def test_missing_unflip_would_be_caught() -> None:
    # Guard for the test above: with this model, forgetting to un-flip changes the result.
    model = _Asymmetric().eval()
    image = torch.randn(3, 13, 18, generator=torch.Generator().manual_seed(1))
    right = _naive(model, image, [1.0, 0.5], True)
    wrong = _naive(model, image, [1.0, 0.5], True, unflip=False)
    assert (right - wrong).abs().max() > 0.05
    got = multiscale_probs(model, image, scales=[1.0, 0.5], flip=True)
    assert (got - wrong).abs().max() > 0.05


def test_multiscale_probs_does_not_track_gradients() -> None:
    model = _Asymmetric().eval()
    image = torch.randn(3, 8, 8, requires_grad=True)
    assert not multiscale_probs(model, image, scales=[1.0], flip=True).requires_grad
