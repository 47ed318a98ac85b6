"""Pseudo-mask stages: CAMs + background threshold + dense CRF → palette PNGs; their evaluation."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from wsss.data.voc import voc_palette
from wsss.io import save_label_png
from wsss.refine.crf import CRFParams
from wsss.refine.pseudo_labels import crf_pseudo_label
from wsss.stages.common import (
    DatasetIndex,
    label_folder_confusion,
    load_image_and_cams,
    metrics_row,
    write_rows,
)
from wsss.stages.sharding import write_images

__all__ = ["run_make_pseudo_labels", "run_eval_pseudo_labels"]

log = logging.getLogger(__name__)

CRF_LABEL_SETS = ("image", "all")


def _one_pseudo_label(
    image_id: str,
    out_dir: Path,
    *,
    root: Path,
    cam_dir: Path,
    bg_threshold: float,
    crf: CRFParams,
    ignore_disagreement: bool,
    num_labels: int | None,
) -> None:
    image, cam = load_image_and_cams(root, cam_dir, image_id)
    label = crf_pseudo_label(
        image,
        cam["high_res"],
        cam["keys"],
        bg_threshold=bg_threshold,
        crf_params=crf,
        ignore_disagreement=ignore_disagreement,
        num_labels=num_labels,
    )
    save_label_png(out_dir / f"{image_id}.png", label, voc_palette())


def run_make_pseudo_labels(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    cam_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str,
    bg_threshold: float,
    crf: CRFParams | Mapping,
    ignore_disagreement: bool,
    crf_labels: str = "image",
    processes: int = 1,
    shard: tuple[int, int] = (1, 1),
) -> None:
    """One pseudo mask per image of ``split`` (CRF-refined, 255 = ignore where configured): the
    ``shard`` (k, n) of them, resumably, in a pool of ``processes`` workers
    (:func:`~wsss.stages.sharding.write_images`).

    ``crf_labels``: ``image`` runs the CRF over the image's classes and the background (IRN),
    ``all`` over every class of the dataset (SMAF's release). A bad ``crf`` (a mapping: a preset
    of ``crf_presets``) fails here, before any image."""
    crf = CRFParams.parse(crf)
    if crf_labels not in CRF_LABEL_SETS:
        raise ValueError(f"crf_labels must be one of {CRF_LABEL_SETS}, got {crf_labels!r}")
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    work = partial(
        _one_pseudo_label,
        root=Path(root),
        cam_dir=Path(cam_dir),
        bg_threshold=bg_threshold,
        crf=crf,
        ignore_disagreement=ignore_disagreement,
        num_labels=len(index.classes) if crf_labels == "all" else None,
    )
    manifest = dict(
        stage="make_pseudo_labels",
        split=split,
        count=len(ids),
        bg_threshold=bg_threshold,
        crf=crf.to_mapping(),
        ignore_disagreement=ignore_disagreement,
        crf_labels=crf_labels,
    )
    write_images(
        out_dir,
        ids,
        work,
        suffix=".png",
        manifest=manifest,
        inputs=[index_path, cam_dir],
        shard=shard,
        processes=processes,
    )
    log.info("wrote the pseudo masks of shard %d of %d to %s", *shard, out_dir)


def run_eval_pseudo_labels(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    mask_dir: str | os.PathLike,
    out_metrics: str | os.PathLike,
    *,
    dataset: str,
    experiment: str,
    split: str,
    gt_dir: str,
    bg_threshold: float,
) -> None:
    """Pseudo-mask mIoU on ``split``; ignored (255) pseudo pixels count as background (IRN)."""
    index = DatasetIndex(index_path)
    conf = label_folder_confusion(
        index.eval_ids(split),
        mask_dir,
        index.files(root, split, gt_dir),
        len(index.classes),
        ignore_as_background=True,
    )
    write_rows(
        out_metrics,
        [
            metrics_row(
                conf,
                classes=index.classes,
                dataset=dataset,
                experiment=experiment,
                stage="pseudo",
                split=split,
                threshold="fixed",
                bg_threshold=bg_threshold,
            )
        ],
    )
