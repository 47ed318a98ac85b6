"""Segmentation stages: train on pseudo masks (or ground truth), predict, evaluate."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

import wsss
from wsss.data.dataset import VOCSegmentation
from wsss.data.transforms import TrainTransform, normalize_image
from wsss.data.voc import image_path, mask_path, voc_palette
from wsss.io import atomic_path, load_image, load_label_png, save_checkpoint, save_label_png
from wsss.metrics import confusion_matrix
from wsss.models import build_seg_model
from wsss.models.backbones import load_pretrained
from wsss.models.prediction import multiscale_probs
from wsss.stages.cam import load_model
from wsss.stages.common import (
    DatasetIndex,
    atomic_dir,
    check_same_size,
    metrics_row,
    write_manifest,
    write_rows,
)
from wsss.training.loop import SeededDataset, config_fingerprint, file_digest, train_steps
from wsss.training.optim import build_optimizer

__all__ = ["run_train_seg", "run_infer_seg", "run_eval_seg"]

log = logging.getLogger(__name__)


def _ce_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    return F.cross_entropy(model(batch["image"])["out"], batch["mask"], ignore_index=255)


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
    """
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    kwargs = {k: v for k, v in model.items() if k != "pretrained"}
    net = build_seg_model(model_name, num_classes=len(index.classes), **kwargs)
    if model.get("pretrained"):
        load_pretrained(net.backbone, model["pretrained"])
    base = VOCSegmentation(root, ids, mask_dir=str(mask_dir))
    optimizer = build_optimizer(
        net.param_groups(),
        name=train["optimizer"],
        lr=train["lr"],
        weight_decay=train["weight_decay"],
        momentum=train["momentum"],
        lr_mults=train["lr_mults"],
    )
    history = train_steps(
        model=net,
        dataset=SeededDataset(base, TrainTransform.from_mapping(train), seed),
        loss_fn=_ce_loss,
        optimizer=optimizer,
        steps=train["steps"],
        batch_size=train["batch_size"],
        seed=seed,
        device=device,
        poly_power=train["poly_power"],
        resume_path=f"{out_model}.resume",
        fingerprint=config_fingerprint(
            model_name,
            dict(model),
            dict(train),
            seed,
            file_digest(index_path),
            file_digest(Path(root) / mask_dir / "manifest.json"),  # the pseudo masks' manifest
        ),
        checkpoint_every=train["checkpoint_every"],
        num_workers=train["num_workers"],
    )
    with atomic_path(out_log) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    save_checkpoint(
        out_model,
        {
            "model_name": model_name,
            "build_kwargs": net.build_kwargs,
            "state_dict": net.state_dict(),
            "classes": index.classes,
            "wsss_version": wsss.__version__,
        },
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
    num_classes = len(index.classes)
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    for image_id in index.ids(split):
        pred_file, gt_file = Path(pred_dir) / f"{image_id}.png", mask_path(root, image_id, gt_dir)
        pred, gt = load_label_png(pred_file), load_label_png(gt_file)
        check_same_size(pred, gt, pred_file, gt_file)
        conf += confusion_matrix(pred, gt, num_classes)
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
