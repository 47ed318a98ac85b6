"""Fixtures shared by test folders: tiny dataset trees in the Cityscapes layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# labelIds the tiny trees use: road 7, sidewalk 8, building 11, person 24, car 26, bicycle 33,
# and 0 / 4 (unlabeled, static: ignored after conversion)
TINY_LABEL_IDS = np.array([7, 8, 11, 24, 26, 33, 0, 4], dtype=np.uint8)
TINY_CITIES = {
    "train": ["aachen_000000_000019", "aachen_000001_000019", "bonn_000000_000019"],
    "val": ["lindau_000000_000019", "lindau_000001_000019"],
}


def _write_cityscapes_tree(root: Path, *, size: tuple[int, int] = (40, 56), seed: int = 0):
    """``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` RGB images and
    ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` grey labelIds in 8×8 blocks, each
    image coloured by its labels plus noise. Returns ``{split: {id: labelIds}}``."""
    rng = np.random.default_rng(seed)
    h, w = size
    written: dict[str, dict[str, np.ndarray]] = {}
    for split, names in TINY_CITIES.items():
        written[split] = {}
        for name in names:
            city = name.split("_")[0]
            blocks = rng.choice(TINY_LABEL_IDS, size=(-(-h // 8), -(-w // 8)))
            label = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))[:h, :w]
            colour = (label.astype(np.int64) * 37) % 256
            rgb = np.stack([colour, (colour * 3) % 256, 255 - colour], axis=-1)
            rgb = np.clip(rgb + rng.integers(-10, 11, size=rgb.shape), 0, 255).astype(np.uint8)
            image_file = root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png"
            label_file = root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png"
            for path in (image_file, label_file):
                path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb).save(image_file)
            Image.fromarray(label, mode="L").save(label_file)
            written[split][f"{city}/{name}"] = label
    return written


@pytest.fixture
def cityscapes_tree() -> Callable[..., dict[str, dict[str, np.ndarray]]]:
    """``cityscapes_tree(root, size=(h, w), seed=0)`` writes a tiny Cityscapes-layout tree
    (3 train images in 2 cities, 2 val images) and returns its labelIds by split and id."""
    return _write_cityscapes_tree
