"""SMAF step 3: self-train an EPS student on its teacher's fused maps (algorithms.md §2.3)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from wsss.data.dataset import VOCSegmentation
from wsss.data.transforms import MapsTransform, normalize_image
from wsss.data.voc import image_path
from wsss.hashing import config_fingerprint, file_digest
from wsss.io import load_cam_npz, load_image
from wsss.models import build_cam_model
from wsss.stages.common import DatasetIndex, check_same_size, input_digest
from wsss.stages.training import load_model, train_and_save
from wsss.training.smaf import SelfTrainer, initial_prototypes
from wsss.utils.amp import autocast, resolve_amp
from wsss.utils.runtime import seed_everything

__all__ = ["run_train_smaf"]

log = logging.getLogger(__name__)


class WithFusedMaps(Dataset):
    """A dataset whose items gain ``"fused"``: ``(K, H, W)`` float32, the maps of a CAM folder
    (``<id>.npz``) placed on their class channels, zero for the other classes."""

    def __init__(self, base: VOCSegmentation, cam_dir: str | os.PathLike, num_fg: int) -> None:
        self.base, self.cam_dir, self.num_fg = base, Path(cam_dir), num_fg

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        item = self.base[index]
        cam_file = self.cam_dir / f"{item['id']}.npz"
        cam = load_cam_npz(cam_file)
        image_file = image_path(self.base.root, item["id"])
        check_same_size(cam["high_res"], item["image"][..., 0], cam_file, image_file)
        fused = np.zeros((self.num_fg, *item["image"].shape[:2]), dtype=np.float32)
        fused[cam["keys"]] = cam["high_res"]
        return dict(item, fused=fused)


def run_train_smaf(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    teacher_path: str | os.PathLike,
    fused_dir: str | os.PathLike,
    out_model: str | os.PathLike,
    out_log: str | os.PathLike,
    *,
    split: str,
    train: Mapping,
    loss: Mapping,
    seed: int,
    device: torch.device,
    saliency_dir: str | None = None,
    amp: str = "off",
    out_tensorboard: str | os.PathLike | None = None,
) -> None:
    """Train SMAF's student, initialised from the EPS teacher, with L_mac on the teacher's fused
    maps (``fused_dir``, from ``infer_cam``); the checkpoint is an ``eps`` network.

    ``loss``: ``bg_score`` (the reactivation's background plane, 0.2), ``weight`` (100),
    ``denoise`` (``none`` | ``prototype`` | ``prototype+saliency``), ``ema_decay``,
    ``prototype_momentum``, ``min_pixels``, ``saliency_threshold``. ``amp``: mixed precision
    (the targets, prototypes and L_mac stay float32); ``out_tensorboard``: the folder of the
    run's TensorBoard event file.
    """
    seed_everything(seed)  # initial weights and draws: a function of seed, not of the caller's RNG
    denoise = loss["denoise"]
    if denoise == "prototype+saliency" and not saliency_dir:
        raise ValueError("denoise 'prototype+saliency' needs the dataset's saliency_dir")
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    student = load_model(teacher_path, build_cam_model, device).train()
    if student.build_kwargs.get("embed_channels") is None and denoise != "none":
        log.info("teacher has no embedding: prototypes use its backbone features")
    prototypes = None
    if denoise != "none":
        images = (normalize_image(load_image(image_path(root, i))) for i in ids)
        with autocast(resolve_amp(amp, device), device):
            prototypes = initial_prototypes(student, images, index.num_fg_classes + 1, device)
        student.train()
    trainer = SelfTrainer(
        student,
        bg_score=loss["bg_score"],
        weight=loss["weight"],
        denoise=denoise,
        prototypes=prototypes,
        ema_decay=loss["ema_decay"],
        prototype_momentum=loss["prototype_momentum"],
        min_pixels=loss["min_pixels"],
        saliency_threshold=loss["saliency_threshold"],
    )
    keys = ["fused", "saliency"] if denoise == "prototype+saliency" else ["fused"]
    base = VOCSegmentation(
        root,
        ids,
        mask_dir=None,
        image_labels=index.label_map(ids),
        saliency_dir=saliency_dir if "saliency" in keys else None,
    )
    train_and_save(
        trainer,
        WithFusedMaps(base, fused_dir, index.num_fg_classes),
        lambda model, batch: model(batch),
        model_name="eps",
        classes=index.classes,
        train=train,
        seed=seed,
        device=device,
        fingerprint=config_fingerprint(
            "smaf",
            dict(train),
            dict(loss),
            seed,
            file_digest(index_path),
            input_digest(teacher_path),
            input_digest(fused_dir),
            input_digest(Path(root) / saliency_dir if "saliency" in keys else None),
        ),
        out_model=out_model,
        out_log=out_log,
        transform=MapsTransform.from_mapping(keys, train),
        saved=student,
        amp=amp,
        out_tensorboard=out_tensorboard,
    )
