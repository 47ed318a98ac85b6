"""Dense prediction for segmentation networks: test-time augmentation (scales × flip) and
sliding-window inference."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["multiscale_probs", "SlidingWindow", "sliding_window_logits", "sliding_window_probs"]


@torch.no_grad()
def multiscale_probs(
    model: torch.nn.Module, image: torch.Tensor, *, scales: Sequence[float], flip: bool
) -> torch.Tensor:
    """Average class probabilities over rescaled (and mirrored) copies of one image.

    Args:
        model: returns ``{"out": logits (B, C, h, w)}`` at its input size.
        image: normalised ``(3, H, W)`` tensor.
    Returns:
        ``(C, H, W)`` float32 probabilities (softmax, averaged over all passes).
    """
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales!r}")
    _, h, w = image.shape
    total = None
    for s in scales:
        x = image[None]
        if s != 1.0:
            x = F.interpolate(
                x,
                size=(max(1, round(h * s)), max(1, round(w * s))),
                mode="bilinear",
                align_corners=False,
            )
        if flip:
            x = torch.cat([x, x.flip(-1)])
        logits = model(x)["out"].float()  # float32 from here on, also under autocast
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        probs = logits.softmax(1)
        probs = probs[0] + probs[1].flip(-1) if flip else probs[0]
        total = probs if total is None else total + probs
    return total / (len(scales) * (2 if flip else 1))


def _window_starts(size: int, crop: int, stride: int) -> list[int]:
    """Window offsets along one axis: ``0, stride, 2·stride, …``, the last one moved back so it
    ends at the border (never before 0); one window when ``size <= crop``."""
    if size <= crop:
        return [0]
    count = math.ceil((size - crop) / stride) + 1
    return sorted({min(i * stride, size - crop) for i in range(count)})


@torch.no_grad()
def sliding_window_logits(
    model: nn.Module,
    images: torch.Tensor,
    *,
    num_classes: int,
    crop_size: int | tuple[int, int],
    stride: int | tuple[int, int],
    pad: bool = True,
) -> torch.Tensor:
    """Logits of overlapping ``crop_size`` windows, averaged where they overlap (PCAA/CCNet
    sliding-window inference; spec §2.4, §2.5).

    Windows start every ``stride`` pixels; the last one on each axis is moved back to end at
    the border, so every pixel is covered and each tile is a full crop (PCAA). Along an axis
    shorter than the crop there is one window: with ``pad`` it is zero-padded at the bottom/right
    to the crop size and its logits cropped back (CCNet; zero = the mean after normalisation);
    without it the shorter tile goes to the model as is (PCAA's whole-image fallback).

    Args:
        model: returns ``{"out": (B, num_classes, h, w)}`` logits at its input size.
        images: normalised ``(B, 3, H, W)``.
        num_classes: channels of the logits.
        crop_size: window ``(h, w)`` or one side (PCAA Cityscapes: 768; CCNet: 769).
        stride: step ``(h, w)`` or one value (⌈2/3·crop⌉: 512; CCNet: 513).

    Returns:
        ``(B, num_classes, H, W)`` float32 mean logits.
    """
    ch, cw = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    if min(ch, cw, sh, sw) < 1:
        raise ValueError(f"crop_size and stride must be >= 1, got {crop_size!r}, {stride!r}")
    b, _, h, w = images.shape
    total = images.new_zeros((b, num_classes, h, w), dtype=torch.float32)
    count = images.new_zeros((1, 1, h, w), dtype=torch.float32)
    for y in _window_starts(h, ch, sh):
        for x in _window_starts(w, cw, sw):
            tile = images[:, :, y : y + ch, x : x + cw]
            th, tw = tile.shape[-2:]
            if pad and (th < ch or tw < cw):
                tile = F.pad(tile, (0, cw - tw, 0, ch - th))
            logits = model(tile)["out"][:, :, :th, :tw]
            if logits.shape[1] != num_classes:
                raise ValueError(f"model gave {logits.shape[1]} classes, expected {num_classes}")
            total[:, :, y : y + th, x : x + tw] += logits.float()
            count[:, :, y : y + th, x : x + tw] += 1
    return total / count


class SlidingWindow(nn.Module):
    """Wrap a segmentation model so that ``forward`` runs :func:`sliding_window_logits`; pass it
    to :func:`multiscale_probs` to combine sliding windows with scales × flip."""

    def __init__(
        self,
        model: nn.Module,
        *,
        num_classes: int,
        crop_size: int | tuple[int, int],
        stride: int | tuple[int, int],
        pad: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.window = {"num_classes": num_classes, "crop_size": crop_size, "stride": stride}
        self.pad = pad

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, 3, H, W)`` → ``{"out": (B, num_classes, H, W)}`` mean window logits."""
        return {"out": sliding_window_logits(self.model, images, pad=self.pad, **self.window)}


@torch.no_grad()
def sliding_window_probs(
    model: nn.Module,
    image: torch.Tensor,
    *,
    num_classes: int,
    crop_size: int | tuple[int, int],
    stride: int | tuple[int, int],
    pad: bool = True,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> torch.Tensor:
    """Class probabilities of one image from sliding-window logits (softmax of the window mean),
    averaged over ``scales`` × ``flip`` as in :func:`multiscale_probs`.

    Args:
        model: returns ``{"out": (B, num_classes, h, w)}`` logits at its input size.
        image: normalised ``(3, H, W)``.
        num_classes, crop_size, stride, pad: as in :func:`sliding_window_logits`.
        scales, flip: as in :func:`multiscale_probs` (PCAA's multi-scale option: 0.5 … 1.75
            in steps of 0.25, with flip).

    Returns:
        ``(num_classes, H, W)`` float32 probabilities.
    """
    window = SlidingWindow(
        model, num_classes=num_classes, crop_size=crop_size, stride=stride, pad=pad
    )
    return multiscale_probs(window, image, scales=scales, flip=flip)
