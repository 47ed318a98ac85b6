"""Drawing primitives of the synthetic benchmark: textures, shapes, parts, one composed image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from wsss.data._synthetic_saliency import imitate_saliency
from wsss.data._synthetic_voc import active, blend_edges, occluder_mask, styled_object

__all__ = ["SHAPE_FAMILIES", "BACKGROUND_TEXTURES", "draw_image"]

SHAPE_FAMILIES: tuple[str, ...] = ("ellipse", "rectangle", "triangle", "star", "cross", "crescent")
BACKGROUND_TEXTURES: tuple[str, ...] = ("grass", "waves", "bricks", "sand", "wood", "clouds")
# Class c uses shape SHAPE_FAMILIES[c], part texture _PARTS[c], prefers BACKGROUND_TEXTURES[c % 6].
_PARTS = (  # (pattern, colour a, colour b): saturated, high-contrast, one per class
    ("hstripes", (230, 30, 30), (250, 210, 20)),
    ("checker", (20, 60, 230), (250, 140, 0)),
    ("vstripes", (220, 0, 200), (0, 200, 220)),
    ("dots", (120, 230, 0), (120, 0, 220)),
    ("dstripes", (230, 0, 90), (0, 120, 230)),
    ("zigzag", (255, 100, 0), (100, 0, 180)),
)
_BODY_PALETTE = np.array(  # bright, desaturated, shared by all classes; brighter than backgrounds
    [
        (225, 205, 215),
        (205, 215, 232),
        (232, 226, 200),
        (215, 205, 232),
        (205, 230, 215),
        (230, 215, 205),
    ],
    dtype=np.float32,
)
_BODY_TINTS = np.array(  # one pastel hue per class, mixed into the body by the body_tint knob
    [
        (240, 170, 170),
        (170, 240, 170),
        (170, 180, 245),
        (240, 235, 150),
        (235, 160, 235),
        (150, 235, 235),
    ],
    dtype=np.float32,
)


def _smooth(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Value noise in [0, 1], ``(h, w)`` float32, correlation length ~``cell`` px."""
    small = rng.random((h // cell + 2, w // cell + 2)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _lerp(t: np.ndarray, lo: Sequence[float], hi: Sequence[float]) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)[..., None]
    return (1 - t) * np.float32(lo) + t * np.float32(hi)


def _background(name: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A dark-to-mid textured background ``(h, w, 3)`` float32 in 0..255."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if name == "grass":
        noise = rng.standard_normal((h, w)).astype(np.float32)
        blades = cv2.GaussianBlur(noise, (0, 0), 0.7, sigmaY=3)
        t = 0.5 + 1.2 * blades + 0.5 * (_smooth(rng, h, w, 16) - 0.5)
        return _lerp(t, (20, 55, 15), (95, 135, 45))
    if name == "waves":
        angle, period = rng.uniform(0, np.pi), rng.uniform(7, 12)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        phase = 2 * np.pi * u / period + 1.5 * np.sin(2 * np.pi * v / (3 * period))
        return _lerp(0.5 + 0.5 * np.sin(phase), (15, 35, 85), (60, 105, 155))
    if name == "bricks":
        bh = int(rng.integers(6, 10))
        row = (yy // bh).astype(np.int64)
        col = ((xx + (row % 2) * bh + rng.integers(0, 2 * bh)) // (2 * bh)).astype(np.int64)
        shade = rng.uniform(0.0, 1.0, size=(row.max() + 1, col.max() + 1)).astype(np.float32)
        img = _lerp(shade[row, col], (95, 35, 25), (140, 65, 45))
        mortar = (yy % bh == 0) | ((xx + (row % 2) * bh) % (2 * bh) == 0)
        img[mortar] = (100, 95, 90)
        return img
    if name == "sand":
        t = 0.5 + 0.25 * rng.standard_normal((h, w)) + 0.6 * (_smooth(rng, h, w, 20) - 0.5)
        img = _lerp(t, (105, 85, 55), (165, 140, 100))
        img[rng.random((h, w)) < 0.03] = (60, 50, 35)
        return img
    if name == "wood":
        warp = 6.0 * _smooth(rng, h, w, 12)
        along = xx if rng.random() < 0.5 else yy
        t = ((along + warp) / rng.uniform(4, 7)) % 1.0
        return _lerp(t + 0.1 * rng.standard_normal((h, w)), (65, 38, 20), (130, 85, 45))
    if name == "clouds":
        t = sum(a * _smooth(rng, h, w, cell) for a, cell in ((0.55, 24), (0.3, 10), (0.15, 4)))
        return _lerp(1.6 * (t - 0.5) + 0.5, (40, 40, 65), (125, 120, 150))
    raise ValueError(f"unknown background texture {name!r}; valid: {BACKGROUND_TEXTURES}")


def _add_clutter(img: np.ndarray, rng: np.random.Generator, density: float) -> None:
    """Paint Poisson(``density`` · area / 10⁴) background-coloured lines and blobs, in place."""
    h, w = img.shape[:2]
    mean = img.reshape(-1, 3).mean(axis=0)
    for _ in range(int(rng.poisson(density * h * w / 1e4))):
        colour = tuple(float(c) for c in np.minimum(mean * rng.choice([0.45, 1.35]), 170.0))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            dx, dy = (rng.uniform(-12, 12, size=2)).astype(int)
            cv2.line(img, (x, y), (x + int(dx), y + int(dy)), colour, 1, cv2.LINE_AA)
        else:
            axes = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
            cv2.ellipse(img, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)


def _canonical(family: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Outline of a shape family inside the unit circle (and a hole to subtract, or None)."""
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    circle = np.stack([np.cos(angles), np.sin(angles)], 1)
    if family == "ellipse":
        return circle, None
    if family == "rectangle":
        return np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)]) / np.sqrt(2), None
    if family == "triangle":
        a = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(a), np.sin(a)], 1), None
    if family == "star":
        a = np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1), None
    if family == "cross":
        t = 0.3
        return np.array(
            [
                (t, t),
                (1, t),
                (1, -t),
                (t, -t),
                (t, -1),
                (-t, -1),
                (-t, -t),
                (-1, -t),
                (-1, t),
                (-t, t),
                (-t, 1),
                (t, 1),
            ]
        ) / np.hypot(1, t), None
    if family == "crescent":
        return circle, 0.8 * circle + np.array([0.45, 0.0])
    raise ValueError(f"unknown shape family {family!r}; valid: {SHAPE_FAMILIES}")


def _shape_mask(
    family: str,
    h: int,
    w: int,
    rng: np.random.Generator,
    size: float,
    aspect: float,
    shape: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> np.ndarray:
    """Random pose of a shape whose longest extent is ``size`` px, fully inside the image
    (``shape``: an ``(outline, hole)`` to use instead of the family's, as the corpus does)."""
    outline, hole = _canonical(family) if shape is None else shape
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])

    def pose(points: np.ndarray) -> np.ndarray:  # squash the minor axis, rotate, scale
        return (points * np.array([1.0, aspect])) @ rot.T * (size / 2)

    pts = pose(outline)
    lo, hi = pts.min(0), pts.max(0)
    shift = [rng.uniform(-lo[d], max(-lo[d], (w, h)[d] - 1 - hi[d])) for d in (0, 1)]
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round((pts + shift) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    if hole is not None:
        cv2.fillPoly(mask, [np.round((pose(hole) + shift) * 16).astype(np.int32)], 0, cv2.LINE_8, 4)
    return mask.astype(bool)


def _part_mask(mask: np.ndarray, rng: np.random.Generator, fraction: float) -> np.ndarray:
    """The ``round(fraction · area)`` object pixels nearest a random interior point (a blob) or
    farthest along a random direction (a band at one end)."""
    ys, xs = np.nonzero(mask)
    k = max(1, int(round(fraction * ys.size)))
    if rng.random() < 0.5:
        j = rng.integers(ys.size)
        score = -((ys - ys[j]) ** 2 + (xs - xs[j]) ** 2).astype(np.float64)
    else:
        a = rng.uniform(0, 2 * np.pi)
        score = xs * np.cos(a) + ys * np.sin(a)
    score = score + 1e-6 * rng.random(ys.size)  # random tie-break, still deterministic
    keep = np.argpartition(-score, k - 1)[:k]
    part = np.zeros_like(mask)
    part[ys[keep], xs[keep]] = True
    return part


def _part_texture(c: int, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Class ``c``'s discriminative texture over the whole image, ``(h, w, 3)`` float32."""
    pattern, col_a, col_b = _PARTS[c]
    yy, xx = np.mgrid[0:h, 0:w] + rng.integers(0, 12, size=(2, 1, 1))
    on = {
        "hstripes": lambda: yy % 4 < 2,
        "vstripes": lambda: xx % 4 < 2,
        "checker": lambda: (yy // 3 + xx // 3) % 2 == 0,
        "dots": lambda: (yy % 5 - 2) ** 2 + (xx % 5 - 2) ** 2 <= 2,
        "dstripes": lambda: (xx + yy) % 6 < 3,
        "zigzag": lambda: (yy + np.abs(xx % 8 - 4)) % 6 < 3,
    }[pattern]()
    return np.where(on[..., None], np.float32(col_a), np.float32(col_b)).astype(np.float32)


def _body(
    rng: np.random.Generator, mask: np.ndarray, contrast: float, cls: int, tint: float
) -> np.ndarray:
    """Bland fill: a shared-palette colour (mixed with the class hue by ``tint``) + noise."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    a = rng.uniform(0, 2 * np.pi)
    u = (np.mgrid[0:h, 0:w] * np.array([np.sin(a), np.cos(a)])[:, None, None]).sum(0)
    u = (u - u[ys, xs].min()) / max(np.ptp(u[ys, xs]), 1.0) - 0.5
    amp = 255.0 * contrast
    shade = amp * u + amp / 4 * rng.standard_normal((h, w))
    colour = (1 - tint) * _BODY_PALETTE[rng.integers(len(_BODY_PALETTE))] + tint * _BODY_TINTS[cls]
    return colour + shade[..., None].astype(np.float32)


def draw_image(
    rng: np.random.Generator, p: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Compose one image from its own random stream.

    Args:
        rng: the image's generator (consumed in a fixed order, so the image is reproducible).
        p: generation parameters, the keys of :func:`wsss.data.synthetic.generate`.

    Returns:
        ``image`` uint8 ``(H, W, 3)`` RGB; ``label`` uint8 ``(H, W)`` with 0 background and
        ``c + 1`` for class c (painting order decides overlaps); ``saliency`` uint8 ``(H, W)``
        (:func:`imitate_saliency` with ``p["saliency_noise"]``); and a JSON-able record
        ``{"background", "size": [H, W], "objects": [{"class", "scale", "area", "part_area",
        "visible_area"}]}`` (areas in px, before/after occlusion).
    """
    k = len(p["fg_class_names"])
    h, w = (int(rng.integers(p["image_size_range"][0], p["image_size_range"][1] + 1)) for _ in "hw")
    classes = rng.integers(0, k, size=int(rng.integers(1, p["max_objects"] + 1)))
    lo, hi = np.log(p["scale_range"])
    objects: list[dict] = []  # painting order; "vis" = pixels still visible
    for c in classes.tolist():
        for _attempt in range(30):  # re-draw until every earlier object stays visible enough
            size = float(np.exp(rng.uniform(lo, hi))) * min(h, w)
            mask = _shape_mask(SHAPE_FAMILIES[c], h, w, rng, size, rng.uniform(*p["aspect_range"]))
            if mask.sum() >= 16 and all(
                (o["vis"] & ~mask).sum() >= p["min_visible"] * o["area"]
                and (o["vis"] & o["part"] & ~mask).sum() >= p["min_visible"] * o["part_area"]
                for o in objects
            ):
                break
        else:
            continue  # no room for this object: leave it out
        for o in objects:
            o["vis"] &= ~mask
        part = _part_mask(mask, rng, p["part_fraction"])
        objects.append(
            {
                "class": c,
                "scale": size / min(h, w),
                "mask": mask,
                "vis": mask.copy(),
                "part": part,
                "area": int(mask.sum()),
                "part_area": int(part.sum()),
            }
        )
    nbg = len(BACKGROUND_TEXTURES)
    if objects and rng.random() < p["context_bias"]:
        bg_name = BACKGROUND_TEXTURES[objects[int(rng.integers(len(objects)))]["class"] % nbg]
    else:
        bg_name = BACKGROUND_TEXTURES[int(rng.integers(nbg))]
    img = _background(bg_name, rng, h, w)
    _add_clutter(img, rng, p["clutter"])
    label = np.zeros((h, w), np.uint8)
    knobs = active(p)  # None: synth's own drawing, untouched (same random draws, same bytes)
    for o in objects:  # later objects occlude earlier ones
        if knobs is None:
            img = np.where(
                o["mask"][..., None],
                _body(rng, o["mask"], p["body_contrast"], o["class"], p["body_tint"]),
                img,
            )
            img = np.where(o["part"][..., None], _part_texture(o["class"], rng, h, w), img)
        else:
            part_texture = _part_texture(o["class"], rng, h, w)
            obj = styled_object(
                rng, o["mask"], o["part"], part_texture, _BODY_TINTS[o["class"]], p, knobs
            )
            img = blend_edges(obj, img, o["mask"], knobs["edge_blend"])
        label[o["mask"]] = o["class"] + 1
    if knobs is not None and knobs["occluders"] > 0:
        occluded = occluder_mask(rng, h, w, knobs["occluders"])
        cover = _background(BACKGROUND_TEXTURES[int(rng.integers(nbg))], rng, h, w)
        img = np.where(occluded[..., None], 0.8 * cover, img)  # darker than the scene behind
        label[occluded] = 0
        for o in objects:
            o["vis"] &= ~occluded
    records = [
        {
            "class": p["fg_class_names"][o["class"]],
            "scale": round(o["scale"], 4),
            "area": o["area"],
            "part_area": o["part_area"],
            "visible_area": int(o["vis"].sum()),
        }
        for o in objects
    ]
    img = cv2.GaussianBlur(img.astype(np.float32), (3, 3), 0.5)
    img = img + p["noise_std"] * rng.standard_normal(img.shape).astype(np.float32)
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)
    saliency = imitate_saliency(
        image, [(o["vis"], o["scale"]) for o in objects], noise=p["saliency_noise"]
    )
    return image, label, saliency, {"background": bg_name, "size": [h, w], "objects": records}
