"""Image/label file pairs of datasets laid out as folder trees (Cityscapes, ADE20K), and a
map-style dataset over such pairs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from wsss.io import load_image, load_label_png

__all__ = ["ImagePair", "PairedSegmentation", "require_dir"]


class ImagePair(NamedTuple):
    """One sample: a dataset-unique ``id``, its ``image`` file, its ``label`` file (or None)."""

    id: str
    image: Path
    label: Path | None


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise ``FileNotFoundError`` naming it."""
    if not path.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {path}")
    return path


class PairedSegmentation:
    """:class:`ImagePair` samples as a map-style dataset; no transforms (the caller applies them).

    ``dataset[i]`` is ``{"id": str, "image": uint8 (H, W, 3) RGB}`` plus ``"mask"`` uint8
    ``(H, W)`` (``convert_label`` applied to the label PNG) when the pair has a label, the same
    item layout as :class:`wsss.data.VOCSegmentation`.

    Args:
        pairs: the samples.
        convert_label: raw label array → training ids with 255 = ignore, e.g.
            :func:`wsss.data.cityscapes.to_train_ids`; it must be picklable (a module-level
            function) for worker processes.
    """

    def __init__(
        self, pairs: Sequence[ImagePair], *, convert_label: Callable[[np.ndarray], np.ndarray]
    ) -> None:
        self.pairs = list(pairs)
        self.convert_label = convert_label

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, object]:
        pair = self.pairs[index]
        item: dict[str, object] = {"id": pair.id, "image": load_image(pair.image)}
        if pair.label is not None:
            item["mask"] = self.convert_label(load_label_png(pair.label))
        return item
