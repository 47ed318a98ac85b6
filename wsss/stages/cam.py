"""CAM stages: train the multi-label classifier, infer multi-scale CAMs, evaluate them."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from wsss.cam.inference import (
    PROCEDURES,
    multiscale_cams,
    normalize_present,
    release_multiscale_cams,
    size_batches,
)
from wsss.cam.labels import cams_to_label, sweep_confusion, threshold_grid
from wsss.cam.methods import get_method
from wsss.data.cda import CDAPairTransform, InstanceBank
from wsss.data.dataset import VOCSegmentation
from wsss.data.transforms import normalize_image
from wsss.data.voc import image_path, mask_path
from wsss.hashing import config_fingerprint, file_digest
from wsss.io import (
    atomic_path,
    image_size,
    load_cam_npz,
    load_image,
    load_label_png,
    save_cam_npz,
)
from wsss.metrics import confusion_matrix, miou
from wsss.models import build_cam_model
from wsss.models.backbones import load_pretrained
from wsss.stages.common import (
    DatasetIndex,
    check_same_size,
    input_digest,
    metrics_row,
    write_rows,
)
from wsss.stages.sharding import write_images
from wsss.stages.training import load_model, train_and_save
from wsss.training.cam_steps import paired_multilabel_step_loss
from wsss.utils.amp import autocast, resolve_amp
from wsss.utils.runtime import seed_everything

__all__ = ["run_train_cam", "run_infer_cam", "run_eval_cam"]

log = logging.getLogger(__name__)


def run_train_cam(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    out_model: str | os.PathLike,
    out_log: str | os.PathLike,
    *,
    split: str,
    model: Mapping,
    train: Mapping,
    seed: int,
    device: torch.device,
    method: str = "cam",
    loss: Mapping | None = None,
    saliency_dir: str | None = None,
    cda: Mapping | None = None,
    amp: str = "off",
    out_tensorboard: str | os.PathLike | None = None,
) -> None:
    """Train the CAM classifier of ``method`` on ``split`` with image-level labels only.

    ``amp``: mixed precision (:func:`wsss.utils.amp.resolve_amp`); ``out_tensorboard``: the
    folder of the run's TensorBoard event file.

    ``method`` names a :data:`wsss.cam.methods.CAM_METHODS` entry, which gives the network, the
    step loss and the sample transform: ``cam``: IRN's GAP classifier; ``seam``: SEAM (two views,
    PCM, ``loss["view_scale"]``); ``cpn``: CPN (PCM + PRCM on complementary patch pairs,
    ``loss["pairs"]``); ``eps``: EPS (fg + bg head, saliency loss with ``loss["tau"]``/
    ``loss["lam"]``; needs ``saliency_dir``).

    ``cda`` (``cam`` only) trains on CDA pairs (algorithms.md §2.2): ``cda["bank"]`` is the
    instance-bank folder, ``paste_mode``/``max_angle``/``size_cap`` the pasting. As released, a
    loader batch holds ``batch_size / 2`` originals and their copies, so the run takes
    2 × ``steps`` steps; ``cda["schedule"] == "faithful"`` keeps the poly schedule at ``steps``
    long (the release's lr reaches ~0 halfway and stays there), ``"fixed"`` stretches it.
    """
    seed_everything(seed)  # initial weights and draws: a function of seed, not of the caller's RNG
    entry = get_method(method)
    loss_fn, transform = entry.training_parts(loss, train)
    uses_saliency = entry.needs_saliency(loss)
    if uses_saliency and not saliency_dir:
        raise ValueError(
            f"CAM method {method!r} needs saliency maps: set the dataset's saliency_dir"
        )
    if cda is not None and method != "cam":
        raise ValueError(f"CDA pairs train IRN's classifier (method 'cam'), not {method!r}")
    schedule = {}
    if cda is not None:
        if cda["schedule"] not in ("faithful", "fixed"):
            raise ValueError(f"cda schedule must be 'faithful' or 'fixed', got {cda['schedule']!r}")
        transform = CDAPairTransform(
            transform,
            InstanceBank(cda["bank"]),
            mode=cda["paste_mode"],
            max_angle=cda["max_angle"],
            size_cap=cda["size_cap"],
        )
        loss_fn, steps = paired_multilabel_step_loss, 2 * train["steps"]
        schedule = {
            "batch_size": max(1, train["batch_size"] // 2),
            "steps": steps,
            "schedule_steps": train["steps"] if cda["schedule"] == "faithful" else steps,
        }
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    kwargs = dict(model["net"])
    kwargs["backbone"] = dict(kwargs["backbone"])
    kwargs.update(entry.network_args)
    net = build_cam_model(entry.network, num_fg_classes=index.num_fg_classes, **kwargs)
    if model.get("pretrained"):
        load_pretrained(net.backbone, model["pretrained"])
    base = VOCSegmentation(
        root,
        ids,
        mask_dir=None,
        image_labels=index.label_map(ids),
        saliency_dir=saliency_dir if uses_saliency else None,
    )
    train_and_save(
        net,
        base,
        loss_fn,
        model_name=entry.network,
        classes=index.classes,
        train=train,
        seed=seed,
        device=device,
        fingerprint=config_fingerprint(
            method,
            dict(model),
            dict(train),
            dict(loss or {}),
            dict(cda or {}),
            seed,
            file_digest(index_path),
            input_digest(model.get("pretrained")),
            input_digest(Path(root) / saliency_dir if uses_saliency else None),
            input_digest(cda["bank"] if cda is not None else None),  # the instance bank
        ),
        out_model=out_model,
        out_log=out_log,
        transform=transform,
        amp=amp,
        out_tensorboard=out_tensorboard,
        **schedule,
    )


def run_infer_cam(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    model_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    split: str,
    scales: list[float],
    flip: bool,
    device: torch.device,
    normalization: str = "max",
    procedure: str = "irn",
    batch_images: int = 1,
    amp: str = "off",
    shard: tuple[int, int] = (1, 1),
) -> None:
    """Write ``<id>.npz`` (keys, high_res) for every image of ``split`` (present classes only),
    each map normalised as ``normalization`` says (:func:`normalize_present`); the ``shard``
    (k, n) of them, resumably (:func:`~wsss.stages.sharding.write_images`).

    Images of one size go through the network together, up to ``batch_images`` of them (and
    their mirror images) per pass (:func:`~wsss.cam.inference.multiscale_cams`); ``amp`` is
    the mixed-precision mode of the forward passes (the maps are summed and normalised in
    float32).

    ``procedure``: ``irn`` (:func:`~wsss.cam.inference.multiscale_cams`: IRN's, also CDA's) or
    ``release`` (:func:`~wsss.cam.inference.release_multiscale_cams`: SEAM's, CPN's, EPS's and
    SMAF's; the maps go through the input size first where the model's
    ``maps_at_input_size`` says its release does)."""
    if procedure not in PROCEDURES:
        raise ValueError(f"CAM infer.procedure must be one of {PROCEDURES}, got {procedure!r}")
    index = DatasetIndex(index_path)
    net = load_model(model_path, build_cam_model, device)
    stride = net.backbone.output_stride
    amp = resolve_amp(amp, device)

    def forward(ids: list[str]) -> torch.Tensor:
        raw = [load_image(image_path(root, i)) for i in ids]
        if procedure == "release":
            return release_multiscale_cams(
                net,
                np.stack(raw),
                scales=scales,
                flip=flip,
                via_input_size=net.maps_at_input_size,
                device=device,
            )
        images = torch.stack([normalize_image(image) for image in raw])
        return multiscale_cams(net, images.to(device), scales=scales, flip=flip, stride=stride)

    def cam_batch(ids: list[str], folder: Path) -> None:
        with autocast(amp, device):
            cams = forward(ids)
        for image_id, maps in zip(ids, cams, strict=True):
            keys, high_res = normalize_present(maps, index.labels(image_id), mode=normalization)
            save_cam_npz(folder / f"{image_id}.npz", keys=keys, high_res=high_res)

    def batches(todo: list[str]) -> list[list[str]]:
        return size_batches({i: image_size(image_path(root, i)) for i in todo}, batch_images)

    ids = index.ids(split)
    manifest = dict(stage="infer_cam", split=split, count=len(ids), scales=scales, flip=flip)
    manifest.update(normalization=normalization, procedure=procedure)
    manifest.update(device=str(device), amp=amp)
    manifest.update(batch_images=batch_images)
    inputs = [index_path, model_path]
    log.info("CAM inference: up to %d images of one size per pass, amp %s", batch_images, amp)
    write_images(
        out_dir,
        ids,
        cam_batch,
        suffix=".npz",
        manifest=manifest,
        inputs=inputs,
        shard=shard,
        batches=batches,
    )


def run_eval_cam(
    index_path: str | os.PathLike,
    root: str | os.PathLike,
    cam_dir: str | os.PathLike,
    out_metrics: str | os.PathLike,
    out_curve: str | os.PathLike,
    *,
    dataset: str,
    experiment: str,
    split: str,
    gt_dir: str,
    bg_threshold: float,
    sweep: Mapping,
) -> None:
    """CAM mIoU on ``split`` at the configured background threshold and at the GT-swept best one.

    The swept ("oracle") threshold is chosen on the evaluation ground truth itself, as the
    literature reports it (algorithms.md §1.4): it is an upper bound, labelled as such.
    """
    index = DatasetIndex(index_path)
    num_classes = len(index.classes)
    grid = threshold_grid(sweep["start"], sweep["stop"], sweep["step"])
    fixed = np.zeros((num_classes, num_classes), dtype=np.int64)
    swept = np.zeros((len(grid), num_classes, num_classes), dtype=np.int64)
    for image_id in index.eval_ids(split):
        cam_file, gt_file = Path(cam_dir) / f"{image_id}.npz", mask_path(root, image_id, gt_dir)
        cam, gt = load_cam_npz(cam_file), load_label_png(gt_file)
        check_same_size(cam["high_res"], gt, cam_file, gt_file)
        fixed += confusion_matrix(
            cams_to_label(cam["high_res"], cam["keys"], bg_threshold), gt, num_classes
        )
        swept += sweep_confusion(cam["high_res"], cam["keys"], gt, grid, num_classes)
    curve = [miou(c) for c in swept]
    best = int(np.nanargmax(curve))
    ident = dict(
        classes=index.classes, dataset=dataset, experiment=experiment, stage="cam", split=split
    )
    write_rows(
        out_metrics,
        [
            metrics_row(fixed, threshold="fixed", bg_threshold=bg_threshold, **ident),
            metrics_row(swept[best], threshold="oracle", bg_threshold=float(grid[best]), **ident),
        ],
    )
    with atomic_path(out_curve) as tmp:
        pd.DataFrame({"bg_threshold": grid, "miou": curve}).to_csv(
            tmp, index=False, float_format="%.6f"
        )
    log.info(
        "CAM mIoU %.4f at t=%.2f; best %.4f at t=%.2f",
        miou(fixed),
        bg_threshold,
        curve[best],
        grid[best],
    )
