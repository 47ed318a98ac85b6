"""Sliding-window inference: window placement against hand-computed offsets, equality with
whole-image prediction for a pointwise model, padding, and composition with scales × flip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wsss.models.prediction import (
    SlidingWindow,
    multiscale_probs,
    sliding_window_logits,
    sliding_window_probs,
)

K = 4


class _Pointwise(nn.Module):
    """A 1×1 conv: each output pixel depends on its input pixel only, so any tiling of the
    image gives the whole-image logits."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, K, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen))
            self.conv.bias.copy_(torch.randn(K, generator=gen))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x)}


class _Recorder(nn.Module):
    """Records every tile's size and origin (read from coordinate channels: 0 = row index + 1,
    1 = column index + 1, 0 in padding) and returns the tile's mean of channel 2 everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.tiles: list[tuple[int, int, int, int]] = []

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        origin = (int(x[0, 0, 0, 0]) - 1, int(x[0, 1, 0, 0]) - 1)
        self.tiles.append((*origin, *x.shape[-2:]))
        mean = x[:, 2].mean(dim=(1, 2)).view(-1, 1, 1, 1)
        return {"out": mean.expand(-1, K, *x.shape[-2:])}


def _coordinates(h: int, w: int, values: torch.Tensor | None = None) -> torch.Tensor:
    rows = torch.arange(1, h + 1, dtype=torch.float32).view(h, 1).expand(h, w)
    cols = torch.arange(1, w + 1, dtype=torch.float32).view(1, w).expand(h, w)
    third = torch.zeros(h, w) if values is None else values
    return torch.stack([rows, cols, third])[None]


def test_windows_follow_the_stride_and_end_at_the_border():
    # W = 11, crop 4, stride 3: ⌈(11 − 4)/3⌉ + 1 = 4 windows at 0, 3, 6 and 9 → moved back to 7
    values = torch.arange(11, dtype=torch.float32).view(1, 11) ** 2
    model = _Recorder()
    got = sliding_window_logits(
        model, _coordinates(1, 11, values), num_classes=K, crop_size=(1, 4), stride=(1, 3)
    )
    assert model.tiles == [(0, 0, 1, 4), (0, 3, 1, 4), (0, 6, 1, 4), (0, 7, 1, 4)]
    windows = [0, 3, 6, 7]
    for x in range(11):
        means = [values[0, s : s + 4].mean() for s in windows if s <= x < s + 4]
        torch.testing.assert_close(got[0, :, 0, x], torch.stack(means).mean().expand(K))


def test_ccnet_cityscapes_windows():
    # 1024×2048, crop 769, stride ⌈769·2/3⌉ = 513: rows 0, 255; columns 0, 513, 1026, 1279
    model = _Recorder()
    sliding_window_logits(model, _coordinates(1024, 2048), num_classes=K, crop_size=769, stride=513)
    expected = [(y, x, 769, 769) for y in (0, 255) for x in (0, 513, 1026, 1279)]
    assert model.tiles == expected


@pytest.mark.parametrize(
    ("size", "crop", "stride", "pad"),
    [((13, 18), 8, 5, True), ((13, 18), (6, 10), (4, 3), True), ((5, 7), 8, 4, True)]
    + [((5, 7), 8, 4, False), ((9, 20), (16, 6), 5, True)],
)
def test_pointwise_model_equals_whole_image(size, crop, stride, pad):
    model = _Pointwise().eval()
    images = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    got = sliding_window_logits(
        model, images, num_classes=K, crop_size=crop, stride=stride, pad=pad
    )
    whole = model(images)["out"]
    torch.testing.assert_close(got, whole)
    probs = sliding_window_probs(model, images[0], num_classes=K, crop_size=crop, stride=stride)
    torch.testing.assert_close(probs, whole[0].softmax(0))


def test_short_sides_padded_or_passed_whole():
    image = _coordinates(5, 7)
    padded, whole = _Recorder(), _Recorder()
    sliding_window_logits(padded, image, num_classes=K, crop_size=8, stride=4)
    sliding_window_logits(whole, image, num_classes=K, crop_size=8, stride=4, pad=False)
    assert padded.tiles == [(0, 0, 8, 8)] and whole.tiles == [(0, 0, 5, 7)]


def test_composes_with_multiscale_and_flip():
    model = _Pointwise().eval()
    image = torch.randn(3, 12, 17, generator=torch.Generator().manual_seed(2))
    got = sliding_window_probs(
        model, image, num_classes=K, crop_size=6, stride=4, scales=[1.0, 0.5, 1.5], flip=True
    )
    ref = multiscale_probs(model, image, scales=[1.0, 0.5, 1.5], flip=True)
    torch.testing.assert_close(got, ref)
    wrapped = SlidingWindow(model, num_classes=K, crop_size=6, stride=4)
    torch.testing.assert_close(wrapped(image[None])["out"], model(image[None])["out"])


def test_no_gradients_and_argument_errors():
    model = _Pointwise()
    image = torch.randn(1, 3, 6, 6, requires_grad=True)
    assert not sliding_window_logits(
        model, image, num_classes=K, crop_size=4, stride=2
    ).requires_grad
    with pytest.raises(ValueError, match="classes"):
        sliding_window_logits(model, image, num_classes=K + 1, crop_size=4, stride=2)
    with pytest.raises(ValueError, match="stride"):
        sliding_window_logits(model, image, num_classes=K, crop_size=4, stride=0)
