"""Segmentation stages: train on pseudo masks (or ground truth), predict, evaluate."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from wsss.data.dataset import VOCSegmentation
from wsss.data.transforms import normalize_image
from wsss.data.voc import image_path, voc_palette
from wsss.io import load_image, save_label_png
from wsss.models import build_seg_model
from wsss.models.backbones import load_pretrained
from wsss.models.prediction import multiscale_probs
from wsss.stages.common import (
    DatasetIndex,
    atomic_dir,
    label_folder_confusion,
    metrics_row,
    write_manifest,
    write_rows,
)
from wsss.stages.training import load_model, train_and_save
from wsss.training.loop import config_fingerprint, file_digest
from wsss.training.losses import segmentation_loss

__all__ = ["run_train_seg", "run_infer_seg", "run_eval_seg", "seg_loss_fn"]

log = logging.getLogger(__name__)


# keys of a seg model config that are not constructor arguments
_NON_CTOR_KEYS = ("pretrained", "loss")


def _configured_loss(
    model: torch.nn.Module, batch: dict, *, aux_weight: float, ohem: Mapping | None
) -> torch.Tensor:
    return segmentation_loss(
        model(batch["image"]), batch["mask"], aux_weight=aux_weight, ohem=ohem, ignore_index=255
    )


def seg_loss_fn(loss: Mapping | None) -> Callable[[torch.nn.Module, dict], torch.Tensor]:
    """The training loss a seg model config's ``loss`` entry asks for.

    ``None`` (no entry): plain cross-entropy on ``"out"``. ``{"aux_weight", "ohem"}``:
    :func:`~wsss.training.losses.segmentation_loss` (OHEM on the main branch if ``ohem`` is a
    ``{"thresh", "min_kept"}`` mapping, plus ``aux_weight`` × cross-entropy on ``"aux"``).
    """
    if loss is None:
        loss = {"aux_weight": 0.0, "ohem": None}
    if set(loss) != {"aux_weight", "ohem"}:
        raise ValueError(f"model loss needs exactly the keys aux_weight and ohem, got {dict(loss)}")
    ohem = None if loss["ohem"] is None else dict(loss["ohem"])
    return functools.partial(_configured_loss, aux_weight=float(loss["aux_weight"]), ohem=ohem)


def run_train_seg(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    out_model: str | os.PathLike,
    out_log: str | os.PathLike,
    *,
    split: str,
    mask_dir: str | os.PathLike,
    model_name: str,
    model: Mapping,
    train: Mapping,
    seed: int,
    device: torch.device,
) -> None:
    """Train a segmentation network on ``split`` with the masks in ``mask_dir``.

    ``mask_dir`` is a pseudo-mask folder (weak supervision) or a ground-truth folder of the
    dataset (the fully supervised oracle); relative ground-truth folders resolve under ``root``.
    ``model`` holds the constructor kwargs plus ``pretrained`` (backbone weights file or None) and
    an optional ``loss`` (see :func:`seg_loss_fn`; absent: plain cross-entropy).
    """
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    loss_fn = seg_loss_fn(model.get("loss"))
    kwargs = {k: v for k, v in model.items() if k not in _NON_CTOR_KEYS}
    net = build_seg_model(model_name, num_classes=len(index.classes), **kwargs)
    if model.get("pretrained"):
        load_pretrained(net.backbone, model["pretrained"])
    fingerprint = config_fingerprint(
        model_name,
        dict(model),
        dict(train),
        seed,
        file_digest(index_path),
        file_digest(Path(root) / mask_dir / "manifest.json"),  # the pseudo masks' manifest
    )
    train_and_save(
        net,
        VOCSegmentation(root, ids, mask_dir=str(mask_dir)),
        loss_fn,
        model_name=model_name,
        classes=index.classes,
        train=train,
        seed=seed,
        device=device,
        fingerprint=fingerprint,
        out_model=out_model,
        out_log=out_log,
    )


def run_infer_seg(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str,
    scales: list[float],
    flip: bool,
    device: torch.device,
) -> None:
    """Palette PNG predictions (argmax of the scale/flip-averaged softmax) for ``split``."""
    ids = DatasetIndex(index_path).ids(split)
    net = load_model(model_path, build_seg_model, device)
    with atomic_dir(out_dir) as tmp:
        for image_id in ids:
            image = normalize_image(load_image(image_path(root, image_id))).to(device)
            pred = multiscale_probs(net, image, scales=scales, flip=flip).argmax(0)
            save_label_png(
                tmp / f"{image_id}.png", pred.cpu().numpy().astype(np.uint8), voc_palette()
            )
        write_manifest(
            tmp,
            stage="infer_seg",
            split=split,
            count=len(ids),
            scales=scales,
            flip=flip,
            device=str(device),
        )


def run_eval_seg(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    pred_dir: str | os.PathLike,
    out_metrics: str | os.PathLike,
    *,
    dataset: str,
    experiment: str,
    split: str,
    gt_dir: str,
) -> None:
    """Final segmentation mIoU on ``split`` (dataset-level confusion, ignore 255)."""
    index = DatasetIndex(index_path)
    conf = label_folder_confusion(index.ids(split), pred_dir, root, gt_dir, len(index.classes))
    write_rows(
        out_metrics,
        [
            metrics_row(
                conf,
                classes=index.classes,
                dataset=dataset,
                experiment=experiment,
                stage="seg",
                split=split,
                threshold="none",
                bg_threshold=None,
            )
        ],
    )
