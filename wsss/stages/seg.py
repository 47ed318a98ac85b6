"""Segmentation stages: train on pseudo masks (or ground truth), predict, evaluate."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from wsss.data.transforms import normalize_image
from wsss.hashing import config_fingerprint, file_digest
from wsss.io import load_image, save_label_png
from wsss.models import build_seg_model
from wsss.models.backbones import load_pretrained
from wsss.models.prediction import multiscale_probs, sliding_window_probs
from wsss.stages.common import (
    DatasetIndex,
    input_digest,
    label_folder_confusion,
    metrics_row,
    write_rows,
)
from wsss.stages.sharding import write_images
from wsss.stages.training import load_model, train_and_save
from wsss.training.losses import segmentation_loss_terms
from wsss.training.pcaa_losses import pcaa_loss_terms
from wsss.utils.amp import autocast, resolve_amp
from wsss.utils.runtime import seed_everything

__all__ = ["run_train_seg", "run_infer_seg", "run_eval_seg", "seg_loss_fn", "seg_predictor"]

log = logging.getLogger(__name__)

# keys of a model's loss entry → the loss: segmentation_loss, or pcaa_loss (+ PCAA's focal term)
_SEG_LOSS_KEYS = frozenset({"aux_weight", "ohem"})
_PCAA_LOSS_KEYS = _SEG_LOSS_KEYS | {"cls_weight", "focal_gamma", "bin_threshold"}


def _configured_loss(model, batch: dict, *, terms: bool, pcaa: bool, **kwargs: object):
    loss_terms = pcaa_loss_terms if pcaa else segmentation_loss_terms
    out = loss_terms(model(batch["image"]), batch["mask"], ignore_index=255, **kwargs)
    return out if terms else out["loss"]


def seg_loss_fn(
    loss: Mapping | None, *, terms: bool = False
) -> Callable[[torch.nn.Module, dict], torch.Tensor | dict[str, torch.Tensor]]:
    """The training loss a seg model config's ``loss`` entry asks for: ``(model, batch) ->``
    the loss, or with ``terms`` the dict of its terms with the total under ``"loss"``.

    ``None`` (no entry): plain cross-entropy on ``"out"``. ``{"aux_weight", "ohem"}``:
    :func:`~wsss.training.losses.segmentation_loss` (OHEM on the main branch if ``ohem`` is a
    ``{"thresh", "min_kept"}`` mapping, plus ``aux_weight`` × cross-entropy on ``"aux"``).
    Those keys plus ``{"cls_weight", "focal_gamma", "bin_threshold"}``:
    :func:`~wsss.training.pcaa_losses.pcaa_loss`, which adds ``cls_weight`` × PCAA's focal
    loss (exponent ``focal_gamma``) on the partial-CAM bin scores against bin labels whose
    class fractions in (0, ``bin_threshold``) are ignored.
    """
    if loss is None:
        loss = {"aux_weight": 0.0, "ohem": None}
    keys = set(loss)
    if keys not in (_SEG_LOSS_KEYS, _PCAA_LOSS_KEYS):
        raise ValueError(
            f"model loss needs exactly the keys aux_weight and ohem (plus cls_weight, "
            f"focal_gamma and bin_threshold for PCAA's loss), got {dict(loss)}"
        )
    kwargs = {
        "aux_weight": float(loss["aux_weight"]),
        "ohem": None if loss["ohem"] is None else dict(loss["ohem"]),
    }
    if keys == _SEG_LOSS_KEYS:
        return functools.partial(_configured_loss, terms=terms, pcaa=False, **kwargs)
    return functools.partial(
        _configured_loss,
        terms=terms,
        pcaa=True,
        cls_weight=float(loss["cls_weight"]),
        gamma=float(loss["focal_gamma"]),
        bin_threshold=float(loss["bin_threshold"]),
        **kwargs,
    )


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
    amp: str = "off",
    out_tensorboard: str | os.PathLike | None = None,
) -> None:
    """Train a segmentation network on ``split`` with the masks in ``mask_dir``.

    ``mask_dir`` is a pseudo-mask folder (weak supervision; absolute) or the split's
    ground-truth folder as ``datasets.<name>.splits`` names it (full supervision), read through
    the index's layout (:class:`wsss.data.layouts.SplitFiles`). ``model`` is a config model
    entry: the constructor kwargs under ``net``, ``pretrained`` (backbone weights file or None)
    and an optional ``loss`` (see :func:`seg_loss_fn`; absent: plain cross-entropy). ``amp``:
    mixed precision (:func:`wsss.utils.amp.resolve_amp`); ``out_tensorboard``: the folder of the
    run's TensorBoard event file.
    """
    seed_everything(seed)  # initial weights and draws: a function of seed, not of the caller's RNG
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    files = index.files(root, split, mask_dir)
    loss_fn = seg_loss_fn(model.get("loss"), terms=True)
    net = build_seg_model(model_name, num_classes=len(index.classes), **model["net"])
    if model.get("pretrained"):
        load_pretrained(net.backbone, model["pretrained"])
    fingerprint = config_fingerprint(
        model_name,
        dict(model),
        dict(train),
        seed,
        file_digest(index_path),
        input_digest(Path(root) / mask_dir),  # the masks' content (pseudo or ground truth)
        input_digest(model.get("pretrained")),
    )
    train_and_save(
        net,
        files.dataset(ids),
        loss_fn,
        model_name=model_name,
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


def seg_predictor(
    net: torch.nn.Module,
    num_classes: int,
    *,
    scales: Sequence[float],
    flip: bool,
    mode: str = "whole",
    crop_size: int | None = None,
    stride: int | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Normalised ``(3, H, W)`` image → ``(K, H, W)`` class probabilities, averaged over
    ``scales`` × ``flip``; each pass runs on the whole (rescaled) image (``mode="whole"``) or
    as overlapping ``crop_size`` windows every ``stride`` pixels whose logits are averaged
    (``"slide"``: PCAA/CCNet's Cityscapes inference, spec §2.4/§2.5).

    Raises:
        ValueError: an unknown mode, or window settings missing (slide) or given (whole).
    """
    if mode == "whole":
        if crop_size is not None or stride is not None:
            raise ValueError("infer: crop_size and stride belong to mode 'slide', not 'whole'")
        return functools.partial(multiscale_probs, net, scales=scales, flip=flip)
    if mode != "slide":
        raise ValueError(f"infer.mode must be 'whole' or 'slide', got {mode!r}")
    if crop_size is None or stride is None:
        raise ValueError("infer: mode 'slide' needs crop_size and stride")
    return functools.partial(
        sliding_window_probs,
        net,
        num_classes=num_classes,
        crop_size=crop_size,
        stride=stride,
        scales=scales,
        flip=flip,
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
    mode: str = "whole",
    crop_size: int | None = None,
    stride: int | None = None,
    amp: str = "off",
    shard: tuple[int, int] = (1, 1),
) -> None:
    """Palette PNG predictions ``<out_dir>/<id>.png`` for ``split``: the argmax of the
    probabilities :func:`seg_predictor` gives (``mode``, ``crop_size``, ``stride``,
    ``scales``, ``flip`` as there; forward passes in the mixed precision ``amp`` asks for,
    probabilities in float32); the ``shard`` (k, n) of them, resumably
    (:func:`~wsss.stages.sharding.write_images`)."""
    index = DatasetIndex(index_path)
    ids = index.ids(split)
    files = index.files(root, split)
    palette = files.palette()
    net = load_model(model_path, build_seg_model, device)
    amp = resolve_amp(amp, device)
    predict = seg_predictor(
        net,
        len(index.classes),
        scales=scales,
        flip=flip,
        mode=mode,
        crop_size=crop_size,
        stride=stride,
    )

    def one_prediction(image_id: str, folder: Path) -> None:
        image = normalize_image(load_image(files.image_path(image_id))).to(device)
        with autocast(amp, device):
            pred = predict(image).argmax(0)
        save_label_png(folder / f"{image_id}.png", pred.cpu().numpy().astype(np.uint8), palette)

    manifest = dict(
        stage="infer_seg",
        split=split,
        count=len(ids),
        mode=mode,
        crop_size=crop_size,
        stride=stride,
        scales=scales,
        flip=flip,
        device=str(device),
        amp=amp,
    )
    write_images(
        out_dir,
        ids,
        one_prediction,
        suffix=".png",
        manifest=manifest,
        inputs=[index_path, model_path],
        shard=shard,
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
    """Final segmentation mIoU on ``split`` (dataset-level confusion, ignore 255); ``gt_dir``
    is the split's ground-truth folder, read through the index's layout."""
    index = DatasetIndex(index_path)
    conf = label_folder_confusion(
        index.eval_ids(split), pred_dir, index.files(root, split, gt_dir), len(index.classes)
    )
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
