"""Affinity refinement stages: confident-region labels, affinity network training, random walk.

``refine: affinitynet`` follows PSA (Ahn & Kwak, CVPR 2018) and ``refine: irn`` follows IRNet
(Ahn, Cho & Kwak, CVPR 2019); algorithms.md §1.5–§1.7. The random-walk masks are written like the
CRF pseudo masks (palette PNGs + manifest), so evaluation and ``train_seg`` treat them alike.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import numpy as np
import torch

from wsss.data.dataset import VOCSegmentation
from wsss.data.voc import voc_palette
from wsss.hashing import config_fingerprint, file_digest
from wsss.io import load_checkpoint, save_label_png
from wsss.models import build_affinity_model
from wsss.models.backbones import load_pretrained
from wsss.refine.affinity_labels import irn_confident_labels, psa_confident_labels
from wsss.refine.crf import CRFParams
from wsss.refine.walk_labels import irn_walk_label, psa_walk_label
from wsss.stages.common import (
    DatasetIndex,
    atomic_dir,
    for_each_id,
    input_digest,
    load_image_and_cams,
    write_manifest,
)
from wsss.stages.sharding import write_images
from wsss.stages.training import load_model, train_and_save
from wsss.training.affinity_steps import affinitynet_step_loss, irn_step_loss
from wsss.utils.amp import autocast, resolve_amp
from wsss.utils.runtime import seed_everything

__all__ = ["run_make_affinity_labels", "run_train_affinity", "run_random_walk"]

log = logging.getLogger(__name__)

_STEP_LOSSES = {"affinitynet": affinitynet_step_loss, "irn": irn_step_loss}
METHODS = tuple(_STEP_LOSSES)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown affinity method {method!r}; choose from {METHODS}")


# ------------------------------------------------------------------------- confident labels


def _one_affinity_label(
    image_id: str,
    *,
    root: Path,
    cam_dir: Path,
    out_dir: Path,
    method: str,
    labels: Mapping,
    crf: CRFParams,
) -> None:
    image, cam = load_image_and_cams(root, cam_dir, image_id)
    if method == "irn":
        label = irn_confident_labels(
            image,
            cam["high_res"],
            cam["keys"],
            fg_threshold=labels["fg_threshold"],
            bg_threshold=labels["bg_threshold"],
            crf_params=crf,
        )
    else:
        label = psa_confident_labels(
            image,
            cam["high_res"],
            cam["keys"],
            alpha_low=labels["alpha_low"],
            alpha_high=labels["alpha_high"],
            crf_params=crf,
        )
    save_label_png(out_dir / f"{image_id}.png", label, voc_palette())


def run_make_affinity_labels(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    cam_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str,
    method: str,
    labels: Mapping,
    crf: CRFParams | Mapping,
    processes: int = 1,
) -> None:
    """Confident foreground/background labels (255 = unsure) for every image of ``split``.

    ``irn``: two label-CRF maps from the ``fg_threshold`` / ``bg_threshold`` planes (IRN);
    ``affinitynet``: softmax-CRF maps of ``[(1 − max cam)^α; cams]`` for α low / high (PSA).
    A bad ``crf`` (a mapping: a preset of ``crf_presets``) fails here, before any image.
    """
    _check_method(method)
    crf = CRFParams.parse(crf)
    ids = DatasetIndex(index_path).ids(split)
    with atomic_dir(out_dir) as tmp:
        work = partial(
            _one_affinity_label,
            root=Path(root),
            cam_dir=Path(cam_dir),
            out_dir=tmp,
            method=method,
            labels=dict(labels),
            crf=crf,
        )
        for_each_id(work, ids, processes)
        write_manifest(
            tmp,
            stage="make_affinity_labels",
            split=split,
            count=len(ids),
            method=method,
            labels=dict(labels),
            crf=crf.to_mapping(),
        )
    log.info("wrote %d confident-region labels to %s", len(ids), out_dir)


# ------------------------------------------------------------------------- training


def _load_cam_backbone(net: torch.nn.Module, cam_model: str | os.PathLike) -> None:
    """Copy the trained CAM classifier's backbone weights into ``net.backbone`` (strict)."""
    state = load_checkpoint(cam_model)["state_dict"]
    prefix = "backbone."
    backbone = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    try:
        net.backbone.load_state_dict(backbone, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"the CAM model {cam_model} has a different backbone than the affinity model config "
            f"(init_from_cam needs the same backbone settings): {error}"
        ) from None


def run_train_affinity(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    label_dir: str | os.PathLike,
    cam_model: str | os.PathLike | None,
    out_model: str | os.PathLike,
    out_log: str | os.PathLike,
    *,
    split: str,
    method: str,
    model: Mapping,
    train: Mapping,
    radius: int,
    seed: int,
    device: torch.device,
    amp: str = "off",
    out_tensorboard: str | os.PathLike | None = None,
) -> None:
    """Train AffinityNet (``affinitynet``) or IRNet's boundary branch (``irn``) on the
    confident-region labels in ``label_dir`` with pair losses of ``radius``.

    ``model`` is a config model entry (the constructor kwargs under ``net``). The backbone
    starts from ``model["pretrained"]`` (local ImageNet weights) and/or, with
    ``model["init_from_cam"]``, from the CAM classifier checkpoint ``cam_model``. ``amp``:
    mixed precision (the affinities and pair losses stay float32); ``out_tensorboard``: the
    folder of the run's TensorBoard event file.
    """
    seed_everything(seed)  # initial weights and draws: a function of seed, not of the caller's RNG
    _check_method(method)
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    net = build_affinity_model(method, **model["net"])
    if model["pretrained"]:
        load_pretrained(net.backbone, model["pretrained"])
    if model["init_from_cam"]:
        if cam_model is None:
            raise ValueError("model.init_from_cam is set but no CAM model file was given")
        _load_cam_backbone(net, cam_model)
    fingerprint = config_fingerprint(
        method,
        dict(model),
        dict(train),
        radius,
        seed,
        file_digest(index_path),
        input_digest(label_dir),
        input_digest(cam_model) if model["init_from_cam"] else None,
        input_digest(model["pretrained"]),
    )
    train_and_save(
        net,
        VOCSegmentation(root, ids, mask_dir=str(Path(label_dir).resolve())),
        partial(_STEP_LOSSES[method], radius=int(radius)),
        model_name=method,
        classes=index.classes,
        train=train,
        seed=seed,
        device=device,
        fingerprint=fingerprint,
        out_model=out_model,
        out_log=out_log,
        amp=amp,
        out_tensorboard=out_tensorboard,
    )


# ------------------------------------------------------------------------- random walk


def run_random_walk(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    cam_dir: str | os.PathLike,
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str,
    method: str,
    walk: Mapping,
    device: torch.device,
    amp: str = "off",
    shard: tuple[int, int] = (1, 1),
) -> None:
    """Random-walk pseudo masks (palette PNGs) for the ``shard`` (k, n) of ``split``'s images,
    resumably (:func:`~wsss.stages.sharding.write_images`); the network runs in the mixed
    precision ``amp`` asks for, the walk in float32."""
    _check_method(method)
    ids = DatasetIndex(index_path).ids(split)
    net = load_model(model_path, build_affinity_model, device)
    one_label = irn_walk_label if method == "irn" else psa_walk_label
    amp = resolve_amp(amp, device)

    def one_mask(image_id: str, folder: Path) -> None:
        image, cam = load_image_and_cams(root, cam_dir, image_id)
        with autocast(amp, device):
            label = one_label(net, image, cam["high_res"], cam["keys"], device, **walk)
        save_label_png(folder / f"{image_id}.png", label.astype(np.uint8), voc_palette())

    manifest = dict(stage="random_walk", split=split, count=len(ids), method=method)
    manifest.update(walk=dict(walk), model=file_digest(model_path), amp=amp)
    inputs = [index_path, cam_dir]  # the model: in the manifest
    write_images(
        out_dir, ids, one_mask, suffix=".png", manifest=manifest, inputs=inputs, shard=shard
    )
