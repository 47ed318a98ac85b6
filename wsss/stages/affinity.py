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
import torch.nn.functional as F

from wsss.cam.labels import label_ids
from wsss.data.dataset import VOCSegmentation
from wsss.data.transforms import normalize_image
from wsss.data.voc import voc_palette
from wsss.io import load_checkpoint, save_label_png
from wsss.models import build_affinity_model, constructor_kwargs
from wsss.models.backbones import load_pretrained
from wsss.refine.affinity_labels import irn_confident_labels, pair_labels, psa_confident_labels
from wsss.refine.crf import CRFParams
from wsss.refine.random_walk import (
    boundary_affinities,
    feature_affinities,
    propagate,
    propagate_features,
)
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
from wsss.training.affinity_losses import affinitynet_loss, irn_affinity_loss
from wsss.training.loop import config_fingerprint, file_digest
from wsss.utils.amp import autocast, resolve_amp

__all__ = ["run_make_affinity_labels", "run_train_affinity", "run_random_walk"]

log = logging.getLogger(__name__)

METHODS = ("affinitynet", "irn")


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


def _affinity_loss(model: torch.nn.Module, batch: dict, *, method: str, radius: int):
    """Pair losses on the network output's grid; labels downscaled with nearest (IRN: ×0.25)."""
    out = model(batch["image"])
    mask = batch["mask"][:, None].float()
    labels = F.interpolate(mask, size=out.shape[-2:], mode="nearest")[:, 0].long()
    bg_pos, fg_pos, neg = pair_labels(labels, radius)
    if method == "irn":
        aff = boundary_affinities(torch.sigmoid(out[:, 0]), radius)
        return irn_affinity_loss(aff, bg_pos, fg_pos, neg)
    return affinitynet_loss(feature_affinities(out, radius), bg_pos, fg_pos, neg)


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

    The backbone starts from ``model["pretrained"]`` (local ImageNet weights) and/or, with
    ``model["init_from_cam"]``, from the CAM classifier checkpoint ``cam_model``. ``amp``:
    mixed precision (the affinities and pair losses stay float32); ``out_tensorboard``: the
    folder of the run's TensorBoard event file.
    """
    _check_method(method)
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    net = build_affinity_model(method, **constructor_kwargs(model))
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
        partial(_affinity_loss, method=method, radius=int(radius)),
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


@torch.no_grad()
def _irn_label(net, image: np.ndarray, cam: dict, walk: Mapping, device) -> np.ndarray:
    """IRN ``make_sem_seg_labels``: boundary of the image and its flip, seeds = CAMs at the
    boundary grid, walk, ×4 bilinear, max-normalise, background plane, argmax."""
    height, width = image.shape[:2]
    x = normalize_image(image).to(device)[None]
    logits = net(torch.cat([x, x.flip(-1)]))[:, 0].float()
    boundary = torch.sigmoid(0.5 * logits[0] + 0.5 * logits[1].flip(-1))
    # The stored CAMs are full resolution; IRN walks its stride-4 CAMs: area-downscale them.
    cams = torch.from_numpy(cam["high_res"]).to(device)
    seeds = F.adaptive_avg_pool2d(cams[None], boundary.shape)[0]
    scores = propagate(
        seeds,
        boundary,
        radius=walk["radius"],
        beta=walk["beta"],
        exp_times=walk["exp_times"],
        bg_threshold=walk["bg_threshold"],
        out_size=(height, width),
    )
    return label_ids(cam["keys"])[scores.argmax(0).cpu().numpy()]


@torch.no_grad()
def _affinitynet_label(net, image: np.ndarray, cam: dict, walk: Mapping, device) -> np.ndarray:
    """PSA ``infer_aff``: pad to a multiple of 8, features, seeds [(1 − max cam)^α; cams]
    8×8-average-pooled, walk, bilinear upsampling, argmax."""
    height, width = image.shape[:2]
    pad_h, pad_w = -height % 8, -width % 8
    x = normalize_image(image).to(device)[None]
    features = net(F.pad(x, (0, pad_w, 0, pad_h)))[0].float()
    cams = torch.from_numpy(cam["high_res"]).to(device)
    if len(cams):
        background = (1 - cams.max(0, keepdim=True).values) ** walk["alpha"]
    else:  # no present class: everything is background
        background = torch.ones(1, height, width, device=device)
    seeds = F.pad(torch.cat([background, cams]), (0, pad_w, 0, pad_h))
    seeds = F.avg_pool2d(seeds[None], 8)[0]
    walked = propagate_features(
        seeds, features, radius=walk["radius"], beta=walk["beta"], logt=walk["logt"]
    )
    size = (height + pad_h, width + pad_w)
    up = F.interpolate(walked[None], size=size, mode="bilinear", align_corners=False)[0]
    up = up[:, :height, :width]
    return label_ids(cam["keys"])[up.argmax(0).cpu().numpy()]


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
    one_label = _irn_label if method == "irn" else _affinitynet_label
    amp = resolve_amp(amp, device)

    def one_mask(image_id: str, folder: Path) -> None:
        image, cam = load_image_and_cams(root, cam_dir, image_id)
        with autocast(amp, device):
            label = one_label(net, image, cam, walk, device)
        save_label_png(folder / f"{image_id}.png", label.astype(np.uint8), voc_palette())

    manifest = dict(stage="random_walk", split=split, count=len(ids), method=method)
    manifest.update(walk=dict(walk), model=file_digest(model_path), amp=amp)
    inputs = [index_path, cam_dir]  # the model: in the manifest
    write_images(
        out_dir, ids, one_mask, suffix=".png", manifest=manifest, inputs=inputs, shard=shard
    )
