"""An ImageNet stand-in for the synthetic benchmarks: a single-label classification corpus.

Every paper starts its backbone from ImageNet; ``synth_voc`` starts from a backbone trained
(rule ``pretrain_backbone``) on this corpus instead. Class k is a combination of an outline
(:data:`CORPUS_SHAPES`), a fill pattern (:data:`CORPUS_PATTERNS`) and a colour triple
(:data:`CORPUS_PALETTES`: fill a/b and a cap — a second part — of a third colour), drawn at a
random pose, size and aspect over one of the synthetic background textures. The palettes differ
from every segmentation class's part colours, so the corpus teaches shapes, parts, textures and
colours without the segmentation classes' exact appearance.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wsss.data._synthetic_draw import BACKGROUND_TEXTURES, _background, _canonical, _shape_mask
from wsss.io import atomic_path

__all__ = [
    "CORPUS_SHAPES",
    "CORPUS_PATTERNS",
    "CORPUS_PALETTES",
    "max_corpus_classes",
    "corpus_class",
    "draw_corpus_image",
    "write_corpus",
    "read_corpus",
]

CORPUS_SHAPES: tuple[str, ...] = (
    "ellipse",
    "rectangle",
    "triangle",
    "star",
    "cross",
    "crescent",
    "hexagon",
    "ring",
    "arrow",
    "ell",
)
CORPUS_PATTERNS: tuple[str, ...] = ("solid", "hstripes", "checker", "dots", "rings", "blotches")
CORPUS_PALETTES: tuple[tuple[tuple[int, int, int], ...], ...] = (  # (fill a, fill b, cap)
    ((40, 160, 90), (230, 230, 120), (150, 40, 40)),
    ((60, 60, 200), (200, 200, 230), (230, 120, 40)),
    ((180, 120, 60), (80, 40, 20), (40, 200, 200)),
    ((200, 80, 140), (250, 200, 220), (30, 90, 30)),
)


def max_corpus_classes() -> int:
    """How many distinct classes the corpus can draw (shapes × patterns × palettes)."""
    return len(CORPUS_SHAPES) * len(CORPUS_PATTERNS) * len(CORPUS_PALETTES)


def corpus_class(k: int) -> tuple[str, str, int]:
    """``(shape, pattern, palette index)`` of class ``k``: shapes vary fastest, then patterns,
    so the first 60 classes use every shape and pattern once with palette 0."""
    if not 0 <= k < max_corpus_classes():
        raise ValueError(f"corpus class {k} out of range 0..{max_corpus_classes() - 1}")
    n_s, n_p = len(CORPUS_SHAPES), len(CORPUS_PATTERNS)
    return CORPUS_SHAPES[k % n_s], CORPUS_PATTERNS[(k // n_s) % n_p], k // (n_s * n_p)


def _outline(shape: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Outline (and hole) of a corpus shape inside the unit circle."""
    if shape == "hexagon":
        a = np.arange(6) * np.pi / 3
        return np.stack([np.cos(a), np.sin(a)], 1), None
    if shape == "ring":
        a = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        circle = np.stack([np.cos(a), np.sin(a)], 1)
        return circle, 0.55 * circle
    if shape == "arrow":
        return np.array([(1, 0), (0.2, 0.7), (0.2, 0.3), (-1, 0.3), (-1, -0.3), (0.2, -0.3),
                         (0.2, -0.7)]), None  # fmt: skip
    if shape == "ell":
        return np.array([(-0.7, -0.7), (0.7, -0.7), (0.7, -0.25), (-0.25, -0.25), (-0.25, 0.7),
                         (-0.7, 0.7)]), None  # fmt: skip
    return _canonical(shape)


def _pattern(name: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Where fill colour b shows, ``(h, w)`` bool."""
    yy, xx = np.mgrid[0:h, 0:w] + rng.integers(0, 8, size=(2, 1, 1))
    period = int(rng.integers(4, 8))
    if name == "solid":
        return np.zeros((h, w), bool)
    if name == "hstripes":
        return yy % period < period // 2
    if name == "checker":
        return (yy // (period // 2) + xx // (period // 2)) % 2 == 0
    if name == "dots":
        return (yy % period - period // 2) ** 2 + (xx % period - period // 2) ** 2 <= 2
    if name == "rings":
        cy, cx = h / 2, w / 2
        return np.hypot(yy - cy, xx - cx).astype(int) % period < period // 2
    if name == "blotches":
        small = rng.random((h // 6 + 2, w // 6 + 2))
        return np.kron(small, np.ones((6, 6)))[:h, :w] > 0.5
    raise ValueError(f"unknown corpus pattern {name!r}; valid: {CORPUS_PATTERNS}")


def draw_corpus_image(rng: np.random.Generator, k: int, size: int) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 RGB image of class ``k``: the object (longest extent
    0.45–0.9 of the image, aspect 0.6–1, random rotation) filled with its pattern, a cap of
    the palette's third colour over the ~25 % of it farthest along a random direction, over a
    random background texture, plus mild pixel noise."""
    shape, pattern, palette = corpus_class(k)
    col_a, col_b, col_cap = (np.float32(c) for c in CORPUS_PALETTES[palette])
    bg = BACKGROUND_TEXTURES[int(rng.integers(len(BACKGROUND_TEXTURES)))]
    img = _background(bg, rng, size, size)
    extent = float(rng.uniform(0.45, 0.9)) * size
    mask = _shape_mask(shape, size, size, rng, extent, rng.uniform(0.6, 1.0), _outline(shape))
    fill = np.where(_pattern(pattern, rng, size, size)[..., None], col_b, col_a)
    ys, xs = np.nonzero(mask)
    a = rng.uniform(0, 2 * np.pi)
    along = xs * np.cos(a) + ys * np.sin(a)
    cap = np.zeros_like(mask)
    if ys.size:
        top = along >= np.quantile(along, 0.75)
        cap[ys[top], xs[top]] = True
    img = np.where(mask[..., None], fill, img)
    img = np.where(cap[..., None], col_cap, img)
    img = img + 4.0 * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_corpus(
    path: str | os.PathLike,
    *,
    seed: int,
    num_classes: int,
    images_per_class: int,
    image_size: int,
) -> None:
    """Write the corpus to ``path`` (``.npz``, atomically): ``images`` uint8 ``(N, S, S, 3)``,
    ``labels`` int64 ``(N,)`` (class-major order), ``class_names`` (``shape-pattern-pN``).
    Image i uses child i of ``SeedSequence(seed)``.

    Raises:
        ValueError: an argument out of range (names it).
    """
    if not 2 <= num_classes <= max_corpus_classes():
        raise ValueError(f"corpus num_classes={num_classes}: need 2..{max_corpus_classes()}")
    if images_per_class < 1:
        raise ValueError(f"corpus images_per_class={images_per_class}: need at least 1")
    if image_size < 32:
        raise ValueError(f"corpus image_size={image_size}: need at least 32 px")
    n = num_classes * images_per_class
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), images_per_class)
    images = np.empty((n, image_size, image_size, 3), np.uint8)
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        images[i] = draw_corpus_image(np.random.default_rng(child), int(labels[i]), image_size)
    names = np.array(["-".join(map(str, corpus_class(k))) for k in range(num_classes)])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=images, labels=labels, class_names=names)


def read_corpus(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(images, labels, class_names)`` of a corpus file (no pickles).

    Raises:
        ValueError: naming ``path`` when the labels do not fit the images or the class list.
    """
    with np.load(path, allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
        names = [str(n) for n in data["class_names"]]
    fits = images.ndim == 4 and len(images) == len(labels)
    if not fits or labels.min() < 0 or labels.max() >= len(names):
        raise ValueError(
            f"corpus {path}: {len(images)} images, {len(labels)} labels in "
            f"{labels.min()}..{labels.max()} for {len(names)} classes do not fit"
        )
    return images, labels, names
