"""Dataset folder layouts: the one map from (layout, root, split, id) to an image file and a
ground-truth mask in training ids (0..K-1, 255 ignore).

``voc``: VOC-format trees (PASCAL VOC 2012 + SBD, the synthetic benchmark; spec §5.1).
``cityscapes``: ``leftImg8bit`` + ``gtFine`` labelIds, 19 trainIds (spec §5.2).
``ade20k``: ``ADEChallengeData2016`` images + annotations, 150 classes, 0 ignored (spec §5.3).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsss.data import ade20k, cityscapes, voc
from wsss.data.pairs import ImagePair, PairedSegmentation
from wsss.io import load_label_png, read_ids

__all__ = ["LAYOUTS", "SplitFiles", "has_background", "layout_classes", "missing_root_message"]

LAYOUTS = ("voc", "cityscapes", "ade20k")
# layouts whose class list is fixed by the dataset (VOC-format trees name their own classes)
_CLASSES = {"cityscapes": cityscapes.CITYSCAPES_CLASSES, "ade20k": ade20k.ADE20K_CLASSES}


def _as_is(label: np.ndarray) -> np.ndarray:
    """VOC masks, pseudo masks and predictions are stored in training ids already."""
    return label


_TO_TRAIN_IDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "voc": _as_is,
    "cityscapes": cityscapes.label_ids_to_train_ids,
    "ade20k": ade20k.ade20k_to_train_ids,
}


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown dataset layout {layout!r}; valid layouts: {list(LAYOUTS)}")


def layout_classes(layout: str) -> list[str] | None:
    """The training classes a layout fixes, spelled as config names (spaces → underscores),
    in training-id order; None for ``voc`` (the config names the classes)."""
    _check_layout(layout)
    names = _CLASSES.get(layout)
    return None if names is None else [n.replace(" ", "_") for n in names]


def has_background(layout: str) -> bool:
    """Whether class 0 is a background class that image-level labels leave out (VOC-format
    WSSS trees); Cityscapes and ADE20K label every class, 0 included."""
    _check_layout(layout)
    return layout == "voc"


@dataclass(frozen=True)
class SplitFiles:
    """Where one split's images and masks lie, and how a mask becomes training ids.

    Args:
        layout: one of :data:`LAYOUTS`.
        root: the dataset root.
        split: split name (VOC: an ``ImageSets/Segmentation`` list; Cityscapes: ``train``,
            ``val``; ADE20K: ``training``, ``validation``).
        mask_dir: the split's ground-truth folder as ``datasets.<name>.splits`` names it (VOC:
            ``SegmentationClass[Aug]``; Cityscapes: ``gtFine`` / ``gtCoarse``; ADE20K:
            ``annotations``), read through the layout and converted to training ids; or an
            absolute folder of ``<id>.png`` masks already in training ids (pseudo masks,
            predictions), read as is. VOC reads ``<root>/<mask_dir>/<id>.png`` either way.
            None: images only (mask methods raise).
    """

    layout: str
    root: Path
    split: str
    mask_dir: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        _check_layout(self.layout)
        object.__setattr__(self, "root", Path(self.root))

    @property
    def _stored_as_train_ids(self) -> bool:
        if self.mask_dir is None:
            raise ValueError(f"no mask folder given for the {self.split!r} files of {self.root}")
        return self.layout == "voc" or Path(self.mask_dir).is_absolute()

    def image_path(self, image_id: str) -> Path:
        if self.layout == "cityscapes":
            return cityscapes.image_file(self.root, self.split, image_id)
        if self.layout == "ade20k":
            return ade20k.image_file(self.root, self.split, image_id)
        return voc.image_path(self.root, image_id)

    def mask_path(self, image_id: str) -> Path:
        if self._stored_as_train_ids:
            return voc.mask_path(self.root, image_id, str(self.mask_dir))
        if self.layout == "cityscapes":
            return cityscapes.label_file(self.root, self.split, image_id, str(self.mask_dir))
        return ade20k.label_file(self.root, self.split, image_id, str(self.mask_dir))

    @property
    def to_train_ids(self) -> Callable[[np.ndarray], np.ndarray]:
        """The (picklable) raw mask → training ids conversion of :meth:`mask_path` files."""
        return _as_is if self._stored_as_train_ids else _TO_TRAIN_IDS[self.layout]

    def load_mask(self, image_id: str) -> np.ndarray:
        """``(H, W)`` uint8 training ids of one image.

        Raises:
            ValueError: naming the file when its values are no labels of the layout.
        """
        path = self.mask_path(image_id)
        label = load_label_png(path)
        try:
            return self.to_train_ids(label)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def list_ids(self) -> list[str]:
        """The split's ids as the tree lists them (VOC: the ``ImageSets`` file; Cityscapes,
        ADE20K: the image folder, each image checked to have its ground-truth file).

        Raises:
            FileNotFoundError: naming the missing list file, folder or label file.
        """
        if self.layout == "cityscapes":
            pairs = cityscapes.list_cityscapes(self.root, self.split, annotation=str(self.mask_dir))
        elif self.layout == "ade20k":
            pairs = ade20k.list_ade20k(self.root, self.split, annotation=str(self.mask_dir))
        else:
            return read_ids(voc.split_path(self.root, self.split))
        return [pair.id for pair in pairs]

    def sources(self) -> list[Path]:
        """What :meth:`list_ids` reads: the VOC split file, or the image and label folders."""
        if self.layout == "voc":
            return [voc.split_path(self.root, self.split)]
        images = "leftImg8bit" if self.layout == "cityscapes" else "images"
        return [self.root / images / self.split, self.root / str(self.mask_dir) / self.split]

    def dataset(self, ids: Sequence[str]) -> PairedSegmentation:
        """``{"id", "image", "mask"}`` samples of ``ids`` (masks in training ids)."""
        pairs = [ImagePair(i, self.image_path(i), self.mask_path(i)) for i in ids]
        return PairedSegmentation(pairs, convert_label=self.to_train_ids)

    def palette(self) -> np.ndarray:
        """``(256, 3)`` colour table for label PNGs (Cityscapes colours; VOC's otherwise)."""
        return cityscapes.cityscapes_palette() if self.layout == "cityscapes" else voc.voc_palette()


def missing_root_message(
    dataset: str,
    root: str | None,
    splits: Mapping[str, str],
    layout: str = "voc",
    fetch: str | None = None,
) -> str:
    """The one-line error for a dataset root that is unset or not a folder, saying what the
    ``layout``'s folder must hold for ``splits`` (split → ground-truth folder), and, for a
    dataset with a ``fetch`` recipe, that rule fetch_dataset fills the folder it names."""
    state = "not set" if root is None else f"{str(root)!r}, which is not a folder"
    if layout == "cityscapes":
        folders = [f"{d}/{s}/<city>/" for s, d in splits.items()]
        what = f"Cityscapes folder holding leftImg8bit/<split>/<city>/ and {', '.join(folders)}"
    elif layout == "ade20k":
        folders = [f"{d}/{s}/" for s, d in splits.items()]
        what = f"ADEChallengeData2016 folder holding images/<split>/ and {', '.join(folders)}"
    else:
        what = (
            "VOC-format folder holding JPEGImages/, SegmentationClass/, SegmentationClassAug/ "
            "and ImageSets/Segmentation/<split>.txt"
        )
    if fetch:
        return (
            f"datasets.{dataset}.root is {state}: set it in config.yaml (or --config) to the "
            f"folder the data should live in (rule fetch_dataset downloads and lays out the "
            f"{fetch} recipe there: a {what} for the splits {sorted(splits)})"
        )
    return (
        f"datasets.{dataset}.root is {state}: set it in config.yaml (or --config) to a {what} "
        f"for the splits {sorted(splits)}"
    )
