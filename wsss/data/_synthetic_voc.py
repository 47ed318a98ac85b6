"""VOC-like appearance knobs of the synthetic benchmark (the ``synth_voc`` dataset).

On ``synth`` every object is one bright, flat body plus one textured part, so a colour edge gives
its whole extent away. These knobs make the extent harder to read, as on VOC: bodies split into
several regions of different colour and texture, textured bodies, edges blended into the
background, and background-labelled occluders in front of objects. At their neutral values
(:data:`NEUTRAL`) none of this code runs and no random number is drawn, so ``synth`` stays
byte-identical.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

__all__ = ["NEUTRAL", "active", "check_knobs", "styled_object", "blend_edges", "occluder_mask"]

# knob -> neutral value (the ``synth`` behaviour)
NEUTRAL: dict[str, float] = {
    "body_parts": 1,
    "body_texture": 0.0,
    "edge_blend": 0.0,
    "occluders": 0.0,
}
MAX_BODY_PARTS = 8
# Mid-tone region colours shared by every class (VOC objects are not all bright): a region's
# colour names no class, so the class-specific part stays the most discriminative cue.
_REGION_PALETTE = np.array(
    [
        (170, 150, 130),
        (120, 130, 150),
        (190, 185, 160),
        (140, 110, 120),
        (110, 140, 115),
        (200, 170, 150),
        (150, 150, 150),
        (90, 95, 110),
    ],
    dtype=np.float32,
)
_REGION_PATTERNS = ("noise", "stripes", "checker", "blotches")


def active(p: Mapping) -> dict[str, float] | None:
    """The VOC-like knobs of ``p`` (missing keys: neutral), or None when all are neutral."""
    knobs = {key: p.get(key, value) for key, value in NEUTRAL.items()}
    return None if knobs == NEUTRAL else knobs


def check_knobs(p: Mapping) -> None:
    """Raise ``ValueError`` naming the first VOC-like knob out of range."""
    rules = {
        "body_parts": lambda v: isinstance(v, int) and 1 <= v <= MAX_BODY_PARTS,
        "body_texture": lambda v: 0 <= v <= 1,
        "edge_blend": lambda v: 0 <= v <= 32,
        "occluders": lambda v: 0 <= v <= 20,
    }
    for key, ok in rules.items():
        if key in p and not ok(p[key]):
            raise ValueError(f"invalid synthetic-data parameter {key}={p[key]!r}")


def _region_texture(rng: np.random.Generator, h: int, w: int, amplitude: float) -> np.ndarray:
    """A zero-mean texture ``(h, w)`` of one random pattern, peak-to-peak ``amplitude`` grey
    levels."""
    pattern = _REGION_PATTERNS[int(rng.integers(len(_REGION_PATTERNS)))]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = float(rng.uniform(4, 10))
    if pattern == "noise":
        t = rng.random((h, w)).astype(np.float32)
    elif pattern == "stripes":
        a = rng.uniform(0, np.pi)
        t = (np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period) > 0).astype(np.float32)
    elif pattern == "checker":
        cell = max(2, int(period / 2))
        t = ((yy // cell + xx // cell) % 2).astype(np.float32)
    else:  # blotches: thresholded value noise
        small = rng.random((h // 8 + 2, w // 8 + 2)).astype(np.float32)
        t = (cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) > 0.5).astype(np.float32)
    return amplitude * (t - 0.5)


def _split(rng: np.random.Generator, body: np.ndarray, n: int) -> np.ndarray:
    """Region index ``(h, w)`` int: each body pixel goes to the nearest of ``n`` seeds drawn
    among the body pixels (a Voronoi split of the body); -1 off the body."""
    ys, xs = np.nonzero(body)
    region = np.full(body.shape, -1, np.int64)
    if ys.size == 0:
        return region
    seeds = rng.choice(ys.size, size=min(n, ys.size), replace=False)
    d2 = (ys[:, None] - ys[seeds][None]) ** 2 + (xs[:, None] - xs[seeds][None]) ** 2
    region[ys, xs] = np.argmin(d2, axis=1)
    return region


def styled_object(
    rng: np.random.Generator,
    mask: np.ndarray,
    part: np.ndarray,
    part_texture: np.ndarray,
    tint: np.ndarray,
    p: Mapping,
    knobs: Mapping,
) -> np.ndarray:
    """An object's appearance ``(h, w, 3)`` float32 (valid on ``mask``): its body (``mask``
    minus ``part``) split into ``body_parts`` regions, each a shared-palette colour mixed with
    the class ``tint`` by ``p["body_tint"]``, plus a random texture of ``body_texture`` · 255 grey
    levels and the body shading of ``p["body_contrast"]``; the class part keeps
    ``part_texture``."""
    h, w = mask.shape
    region = _split(rng, mask & ~part, int(knobs["body_parts"]))
    out = np.zeros((h, w, 3), np.float32)
    amp = 255.0 * p["body_contrast"]
    shade = amp / 4 * rng.standard_normal((h, w)).astype(np.float32)
    for r in range(int(region.max()) + 1):
        colour = _REGION_PALETTE[int(rng.integers(len(_REGION_PALETTE)))]
        colour = (1 - p["body_tint"]) * colour + p["body_tint"] * tint
        texture = _region_texture(rng, h, w, 255.0 * knobs["body_texture"])
        inside = region == r
        out[inside] = colour + (texture + shade)[inside][:, None]
    out[part] = part_texture[part]
    return out


def blend_edges(obj: np.ndarray, behind: np.ndarray, mask: np.ndarray, width: float) -> np.ndarray:
    """``obj`` painted over ``behind`` on ``mask`` with a linear ramp: a pixel at distance d (px)
    from the outline keeps the share ``min(d / width, 1)`` of the object (low-contrast edges)."""
    if width <= 0:
        return np.where(mask[..., None], obj, behind)
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    alpha = np.clip(dist / width, 0.0, 1.0)[..., None].astype(np.float32)
    return alpha * obj + (1 - alpha) * behind


def occluder_mask(rng: np.random.Generator, h: int, w: int, mean_count: float) -> np.ndarray:
    """Poisson(``mean_count``) occluders — bars (poles, branches) and blobs (foliage) — as one
    ``(h, w)`` bool mask; they are background (label 0) in front of the objects."""
    occ = np.zeros((h, w), np.uint8)
    side = min(h, w)
    for _ in range(int(rng.poisson(mean_count))):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.6:
            a = rng.uniform(0, np.pi)
            half = rng.uniform(0.3, 0.7) * side
            dx, dy = half * np.cos(a), half * np.sin(a)
            thick = max(2, int(rng.uniform(0.02, 0.06) * side))
            cv2.line(occ, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)), 1, thick)
        else:
            axes = tuple(max(2, int(rng.uniform(0.04, 0.12) * side)) for _ in "ab")
            cv2.ellipse(occ, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return occ.astype(bool)
