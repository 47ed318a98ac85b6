"""A stand-in for an off-the-shelf salient-object detector (PFAN, as EPS uses) on synthetic images.

EPS and SMAF learn from saliency maps whose errors matter: the detector blurs object edges,
misses small objects and fires on busy background texture. The map here is built from the
ground truth with exactly those three errors, scaled by one knob, so methods can be compared with
saliency of known quality. Deterministic (no random draws): the image stream stays unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["imitate_saliency"]

# Objects whose longest extent is below SMALL (fraction of the image's shorter side) fade, and
# are gone at TINY when noise = 1 (detectors trained on DUTS favour large, central objects).
SMALL, TINY = 0.5, 0.25
# Local grey-level std (9 × 9 window) mapped to a false response: 0 below LOW, full above HIGH.
LOW, HIGH = 14.0, 34.0


def imitate_saliency(
    image: np.ndarray,
    objects: Sequence[tuple[np.ndarray, float]],
    *,
    noise: float,
    blur: float = 2.0,
) -> np.ndarray:
    """A saliency map of a synthetic image.

    Each object's visible pixels respond with ``1 − noise · m(scale)``, where ``m`` rises linearly
    from 0 at ``SMALL`` to 1 at ``TINY`` (misses on small objects). Background pixels respond with
    ``noise · t``, ``t`` the smoothed local-contrast map of the image rescaled from [LOW, HIGH] to
    [0, 1] (false hits on busy texture). The map is then Gaussian-blurred with σ = ``blur`` px
    (soft edges). ``noise = 0`` gives the blurred ground-truth foreground.

    Args:
        image: uint8 ``(H, W, 3)`` RGB.
        objects: ``(visible mask (H, W) bool, scale)`` per object.
        noise: error strength in [0, 1].
        blur: edge blur (px).

    Returns:
        uint8 ``(H, W)``, 255 = salient (the ``SALImages`` PNG convention).
    """
    if not 0 <= noise <= 1:
        raise ValueError(f"saliency noise must lie in [0, 1], got {noise!r}")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(grey, (9, 9))
    std = np.sqrt(np.maximum(cv2.blur(grey * grey, (9, 9)) - mean * mean, 0.0))
    busy = cv2.GaussianBlur(std, (0, 0), 3.0)
    response = noise * np.clip((busy - LOW) / (HIGH - LOW), 0.0, 1.0)
    for visible, scale in objects:
        miss = np.clip((SMALL - scale) / (SMALL - TINY), 0.0, 1.0)
        response[visible] = 1.0 - noise * miss
    if blur > 0:
        response = cv2.GaussianBlur(response, (0, 0), blur)
    return np.clip(np.round(255 * response), 0, 255).astype(np.uint8)
