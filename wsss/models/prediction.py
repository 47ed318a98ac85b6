"""Dense prediction with test-time augmentation (scales × flip) for segmentation networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["multiscale_probs"]


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
        logits = F.interpolate(model(x)["out"], size=(h, w), mode="bilinear", align_corners=False)
        probs = logits.softmax(1)
        probs = probs[0] + probs[1].flip(-1) if flip else probs[0]
        total = probs if total is None else total + probs
    return total / (len(scales) * (2 if flip else 1))
