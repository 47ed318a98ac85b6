"""CPN's complementary patch pairs: hide a random half of the regions in one copy, the rest in
the other (Zhang et al., "Complementary Patch for Weakly Supervised Semantic Segmentation",
ICCV 2021, §3.1; algorithms.md §2.1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["STRATEGIES", "superpixel_keep_mask", "grid_keep_mask", "ComplementaryPairTransform"]

STRATEGIES = ("superpixel", "grid")


def superpixel_keep_mask(
    image_hwc: np.ndarray,
    rng: np.random.Generator,
    *,
    n_segments: int,
    compactness: float = 10.0,
) -> np.ndarray:
    """The released strategy: SLIC superpixels (labels 1..S) of the normalised crop; draw
    ⌊(S + 1)/2⌋ integers uniformly from 0..S *with replacement* and hide the superpixels drawn
    (0 is no superpixel, so ~39 % of them end up hidden, not half).

    Returns:
        ``(H, W)`` float32 keep mask M (1 = visible in x1, 0 = hidden).
    """
    from skimage.segmentation import slic  # imported here: only CPN training needs it

    segments = slic(
        np.ascontiguousarray(image_hwc, dtype=np.float64),
        n_segments=int(n_segments),
        compactness=float(compactness),
        start_label=1,
        channel_axis=-1,
    )
    count = int(segments.max())
    hidden = rng.integers(0, count + 1, size=(count + 1) // 2)
    return (~np.isin(segments, hidden)).astype(np.float32)


def grid_keep_mask(
    size: tuple[int, int], rng: np.random.Generator, *, cell_sizes: Sequence[int]
) -> tuple[np.ndarray, float]:
    """The grid alternative: a cell size drawn from ``cell_sizes``, every cell hidden with
    probability ½.

    Returns:
        ``(H, W)`` float32 keep mask and r1 = the share of visible *cells* (as released).
    """
    cell = int(cell_sizes[rng.integers(len(cell_sizes))])
    rows, cols = -(-size[0] // cell), -(-size[1] // cell)
    visible = rng.random((rows, cols)) >= 0.5
    mask = np.kron(visible, np.ones((cell, cell), dtype=bool))[: size[0], : size[1]]
    return mask.astype(np.float32), float(visible.mean())


class ComplementaryPairTransform:
    """Wrap a training transform: after augmentation, add the keep mask ``cp_mask`` (1, H, W)
    and ``cp_ratio`` r1 of a complementary pair, drawn from the sample's RNG.

    The pair is x1 = image ⊙ M and x2 = image ⊙ (1 − M); the crop's padding is split too, as in
    the original loader. Superpixel r1 is the visible pixel share; grid r1 the visible cell share.

    Args:
        base: the image transform (returns a dict with a normalised ``image`` (3, H, W)).
        strategy: ``"superpixel"`` (released) or ``"grid"``.
        n_segments, compactness: SLIC settings (CPN: 300 segments on 448² crops, compactness 10).
        cell_sizes: grid cell sizes in pixels (CPN: 224 and 448 on 448² crops).
    """

    def __init__(
        self,
        base,
        *,
        strategy: str,
        n_segments: int = 300,
        compactness: float = 10.0,
        cell_sizes: Sequence[int] = (224, 448),
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(
                f"complementary strategy must be one of {STRATEGIES}, got {strategy!r}"
            )
        self.base, self.strategy = base, strategy
        self.n_segments, self.compactness, self.cell_sizes = n_segments, compactness, cell_sizes

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        out = self.base(sample, rng)
        image = out["image"]
        if self.strategy == "superpixel":
            mask = superpixel_keep_mask(
                image.permute(1, 2, 0).numpy(),
                rng,
                n_segments=self.n_segments,
                compactness=self.compactness,
            )
            ratio = float(mask.mean())
        else:
            mask, ratio = grid_keep_mask(tuple(image.shape[-2:]), rng, cell_sizes=self.cell_sizes)
        out["cp_mask"] = torch.from_numpy(mask)[None]
        out["cp_ratio"] = torch.tensor(ratio, dtype=torch.float32)
        return out
