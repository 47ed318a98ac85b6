"""Pre-training stages of the ImageNet stand-in: the shape corpus; one backbone trained on it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import pandas as pd
import torch

from wsss.data.shape_corpus import read_corpus, write_corpus
from wsss.fetch.catalog import architecture
from wsss.hashing import config_fingerprint, file_digest
from wsss.io import atomic_path, write_json
from wsss.stages.training import torch_threads
from wsss.training.pretrain import split_holdout, top1_accuracy, train_classifier

__all__ = ["run_make_pretrain_corpus", "run_pretrain_backbone"]

log = logging.getLogger(__name__)


def run_make_pretrain_corpus(out: str | os.PathLike, *, corpus: Mapping) -> None:
    """Write the corpus ``corpus`` describes (seed, num_classes, images_per_class, image_size)."""
    write_corpus(
        out,
        seed=int(corpus["seed"]),
        num_classes=int(corpus["num_classes"]),
        images_per_class=int(corpus["images_per_class"]),
        image_size=int(corpus["image_size"]),
    )


def run_pretrain_backbone(
    corpus_path: str | os.PathLike,
    out_weights: str | os.PathLike,
    out_log: str | os.PathLike,
    out_manifest: str | os.PathLike,
    *,
    backbone: Mapping,
    train: Mapping,
    seed: int,
    device: torch.device,
    holdout: float,
) -> None:
    """Train ``backbone`` on the corpus minus a held-out share per class, then write its
    weights (``pretrained:`` format), the loss log (CSV) and a manifest (JSON: architecture,
    classes, held-out top-1 accuracy, corpus digest).

    Raises:
        ValueError: ``holdout`` outside [0, 0.5], or a corpus whose labels do not fit.
    """
    if not 0 <= holdout <= 0.5:
        raise ValueError(f"pretrain holdout={holdout!r}: need a share in [0, 0.5]")
    images, labels, names = read_corpus(corpus_path)
    train_idx, held_idx = split_holdout(labels, holdout)
    digest = file_digest(corpus_path)
    fingerprint = config_fingerprint(dict(backbone), dict(train), seed, digest)
    with torch_threads(train.get("threads", 1)):
        model, history = train_classifier(
            images[train_idx],
            labels[train_idx],
            backbone=backbone,
            num_classes=len(names),
            train=train,
            seed=seed,
            device=device,
            fingerprint=fingerprint,
            out_weights=out_weights,
        )
        accuracy = top1_accuracy(model, images[held_idx], labels[held_idx], device)
    log.info("held-out top-1 accuracy %.3f over %d classes", accuracy, len(names))
    with atomic_path(out_log) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    write_json(
        out_manifest,
        {
            "architecture": architecture(backbone),
            "backbone": dict(backbone),
            "num_classes": len(names),
            "train_images": int(len(train_idx)),
            "heldout_images": int(len(held_idx)),
            "heldout_top1": None if accuracy != accuracy else round(accuracy, 4),
            "steps": int(train["steps"]),
            "corpus_digest": digest,
        },
    )
