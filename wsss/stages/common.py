"""Helpers shared by the stages: the dataset index, atomic output directories, metric rows."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

import wsss
from wsss.data.layouts import SplitFiles, has_background
from wsss.data.voc import image_path
from wsss.hashing import file_digest, folder_digest
from wsss.io import atomic_path, load_cam_npz, load_image, load_label_png, read_json, write_json
from wsss.metrics import confusion_matrix, miou, per_class_iou, pixel_accuracy

__all__ = [
    "DatasetIndex",
    "atomic_dir",
    "check_same_size",
    "for_each_id",
    "load_image_and_cams",
    "label_folder_confusion",
    "metrics_row",
    "write_rows",
    "write_manifest",
    "content_digest",
    "input_digest",
    "METRIC_COLUMNS",
]

METRIC_COLUMNS = [
    "dataset",
    "experiment",
    "stage",
    "split",
    "threshold",
    "bg_threshold",
    "miou",
    "pixel_acc",
]


class DatasetIndex:
    """The checked dataset (``check_dataset``'s output): classes, split ids, image labels, and
    the folder layout (:mod:`wsss.data.layouts`; ``voc`` for indexes written without one)."""

    def __init__(self, path: str | os.PathLike) -> None:
        data = read_json(path)
        self.path = Path(path)
        self.classes: list[str] = data["classes"]
        self.splits: dict[str, list[str]] = data["splits"]
        self._labels: dict[str, list[int]] = data["labels"]
        self.layout: str = data.get("layout", "voc")

    @property
    def num_fg_classes(self) -> int:
        """Length of the image-level label vectors: the classes without background (VOC
        layout), every class otherwise."""
        return len(self.classes) - int(has_background(self.layout))

    def files(
        self, root: str | os.PathLike, split: str, mask_dir: str | os.PathLike | None = None
    ) -> SplitFiles:
        """Image (and ``mask_dir``'s mask) files of ``split`` in this index's layout."""
        self.ids(split)
        return SplitFiles(self.layout, Path(root), split, mask_dir)

    def ids(self, split: str) -> list[str]:
        if split not in self.splits:
            raise KeyError(f"split {split!r} not in {self.path}; available: {sorted(self.splits)}")
        return self.splits[split]

    def eval_ids(self, split: str) -> list[str]:
        """:meth:`ids` of a split to evaluate; an evaluation of no image would write a blank
        mIoU, so it is refused (check_dataset refuses empty splits; an old index may hold one).

        Raises:
            ValueError: naming the split and the index when the split is empty.
        """
        ids = self.ids(split)
        if not ids:
            raise ValueError(f"nothing to evaluate: split {split!r} in {self.path} has no images")
        return ids

    def labels(self, image_id: str) -> np.ndarray:
        """(K_fg,) float32 multi-hot image-level labels."""
        if image_id not in self._labels:
            raise KeyError(f"image id {image_id!r} has no labels in {self.path}")
        out = np.zeros(self.num_fg_classes, dtype=np.float32)
        out[self._labels[image_id]] = 1.0
        return out

    def label_map(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return {i: self.labels(i) for i in ids}

    @staticmethod
    def write(
        path: str | os.PathLike,
        *,
        classes: Sequence[str],
        splits: dict[str, list[str]],
        labels: dict[str, np.ndarray],
        layout: str = "voc",
    ) -> None:
        write_json(
            path,
            {
                "classes": list(classes),
                "layout": layout,
                "splits": splits,
                "labels": {i: np.flatnonzero(v).tolist() for i, v in sorted(labels.items())},
            },
        )


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Fill a temporary sibling directory; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_same_size(
    a: np.ndarray, b: np.ndarray, a_path: os.PathLike | str, b_path: os.PathLike | str
) -> None:
    """Raise naming both files when two per-image arrays disagree in (H, W) (a stale artifact)."""
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(
            f"{a_path} is {a.shape[-2]}x{a.shape[-1]} (HxW) but {b_path} is "
            f"{b.shape[-2]}x{b.shape[-1]}: the artifact is stale or from another dataset; "
            "rerun its stage"
        )


def load_image_and_cams(
    root: str | os.PathLike, cam_dir: str | os.PathLike, image_id: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One image (uint8 HWC) and its CAM file, checked to have the same size."""
    cam_file, image_file = Path(cam_dir) / f"{image_id}.npz", image_path(root, image_id)
    cam, image = load_cam_npz(cam_file), load_image(image_file)
    check_same_size(cam["high_res"], image[..., 0], cam_file, image_file)
    return image, cam


def for_each_id(work: Callable[[str], None], ids: Sequence[str], processes: int = 1) -> None:
    """Run ``work(image_id)`` for every id, in a process pool when ``processes`` > 1."""
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(work, ids, chunksize=16))
    else:
        for image_id in ids:
            work(image_id)


def label_folder_confusion(
    ids: Sequence[str],
    pred_dir: str | os.PathLike,
    gt: SplitFiles,
    num_classes: int,
    *,
    ignore_as_background: bool = False,
) -> np.ndarray:
    """Dataset-level confusion of the ``<id>.png`` label maps in ``pred_dir`` against the ground
    truth ``gt`` reads (in training ids); with ``ignore_as_background``, predicted 255 counts as
    class 0 (IRN's convention)."""
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    for image_id in ids:
        pred_file, gt_file = Path(pred_dir) / f"{image_id}.png", gt.mask_path(image_id)
        pred, gt_mask = load_label_png(pred_file), gt.load_mask(image_id)
        check_same_size(pred, gt_mask, pred_file, gt_file)
        if ignore_as_background:
            pred = np.where(pred == 255, 0, pred)
        conf += confusion_matrix(pred, gt_mask, num_classes)
    return conf


def metrics_row(
    conf: np.ndarray,
    *,
    classes: Sequence[str],
    dataset: str,
    experiment: str,
    stage: str,
    split: str,
    threshold: str,
    bg_threshold: float | None,
) -> dict:
    """One ``miou.csv`` row: identification columns, mIoU, pixel accuracy, ``iou_<class>``.

    Raises:
        ValueError: ``conf`` counts no pixel (no image, or ground truth all ignore): the row
            would hold a blank mIoU.
    """
    if conf.sum() == 0:
        raise ValueError(
            f"{stage} evaluation of {dataset}/{experiment} on split {split!r} counted no "
            "labelled ground-truth pixel (every pixel 255?); refusing to write a blank mIoU"
        )
    row = {
        "dataset": dataset,
        "experiment": experiment,
        "stage": stage,
        "split": split,
        "threshold": threshold,
        "bg_threshold": bg_threshold,
        "miou": miou(conf),
        "pixel_acc": pixel_accuracy(conf),
    }
    row.update({f"iou_{name}": v for name, v in zip(classes, per_class_iou(conf), strict=True)})
    return row


def write_rows(path: str | os.PathLike, rows: Sequence[dict]) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(list(rows)).to_csv(tmp, index=False, float_format="%.6f")


def manifest(**fields: object) -> dict:
    """Fields common to every stage manifest (library versions), plus the stage's own."""
    import torch  # only the stages that write artifact folders load it (they use it anyway)

    return {"wsss_version": wsss.__version__, "torch_version": torch.__version__, **fields}


def write_manifest(directory: str | os.PathLike, **fields: object) -> None:
    """Write ``manifest.json`` with the stage's fields and the ``content_digest`` of the files
    already in ``directory`` (call it last): what a resume fingerprint of a later stage reads."""
    write_json(
        Path(directory) / MANIFEST,
        manifest(**fields, content_digest=content_digest(directory)),
    )


MANIFEST = "manifest.json"


def content_digest(directory: str | os.PathLike) -> str:
    """The digest of a stage folder's files, its own manifest left out
    (:func:`wsss.hashing.folder_digest`)."""
    return folder_digest(directory, leave_out=(MANIFEST,))


def input_digest(path: str | os.PathLike | None) -> str | None:
    """What identifies one input of a resumable stage by content: a file's sha256; a stage
    folder's recorded ``content_digest`` (hashed once when it was written); any other folder
    (ground-truth masks, saliency maps) hashed now. None for no input (``path`` None); a path
    that does not exist raises ``FileNotFoundError`` (:mod:`wsss.hashing`)."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_dir():
        return file_digest(path)
    manifest_file = path / MANIFEST
    recorded = read_json(manifest_file).get("content_digest") if manifest_file.is_file() else None
    return recorded or content_digest(path)
