"""ImageNet-style pre-training of a backbone on the shape corpus (:mod:`wsss.data.shape_corpus`).

The backbone is trained as a plain single-label classifier (global average pooling + ``fc``) at
output stride 32 with trainable BatchNorm, as ImageNet models are; the file it leaves is a flat
state dict in torchvision's layout (backbone keys plus ``fc.weight``/``fc.bias``), which
:func:`wsss.models.backbones.load_pretrained` loads strictly into the same architecture with any
output stride, dilation or ``frozen_bn`` setting (those change no keys).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from wsss.data.transforms import IMAGENET_MEAN_PIXEL, normalize_image, random_crop
from wsss.io import save_checkpoint
from wsss.models.backbones import backbone_from_config
from wsss.training.loop import SeededDataset, train_steps
from wsss.training.optim import build_optimizer

__all__ = [
    "pretraining_backbone",
    "BackboneClassifier",
    "CorpusSamples",
    "corpus_transform",
    "split_holdout",
    "train_classifier",
    "top1_accuracy",
]


def pretraining_backbone(backbone: Mapping) -> dict:
    """The backbone config to pre-train for ``backbone``: the same architecture (the keys of the
    weights file) at output stride 32 with trainable BatchNorm, whatever the recipe fine-tunes
    with."""
    if backbone.get("name") != "resnet":
        raise ValueError(
            f"pretrain_backbone trains resnet backbones only, got {backbone.get('name')!r}"
        )
    cfg = {k: v for k, v in backbone.items() if k not in ("multi_grid", "dilate")}
    return {**cfg, "output_stride": 32, "frozen_bn": False}


class BackboneClassifier(nn.Module):
    """``backbone`` → global average pooling → ``fc`` (``num_classes`` logits)."""

    def __init__(self, backbone: Mapping, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone_from_config(pretraining_backbone(backbone))
        self.fc = nn.Linear(self.backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x).mean(dim=(2, 3)))

    def param_groups(self) -> list[dict]:
        return [
            {"name": "backbone", "params": list(self.backbone.parameters())},
            {"name": "head", "params": list(self.fc.parameters())},
        ]

    def weights(self) -> dict[str, torch.Tensor]:
        """The torchvision-layout state dict: backbone keys, then ``fc.weight``/``fc.bias``."""
        state = {k: v for k, v in self.backbone.state_dict().items()}
        state.update({f"fc.{k}": v for k, v in self.fc.state_dict().items()})
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}


class CorpusSamples(Dataset):
    """The raw ``{"image", "label"}`` samples of a corpus (arrays in memory)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": int(self.labels[i])}


def corpus_transform(sample: dict, rng: np.random.Generator, pad: int = 4) -> dict:
    """ImageNet-style light augmentation: pad by ``pad`` px, random crop back, random flip."""
    image = sample["image"]
    size = image.shape[0]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    image, _ = random_crop(padded, None, size, rng, image_fill=IMAGENET_MEAN_PIXEL)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return {"image": normalize_image(image), "label": torch.tensor(sample["label"])}


def split_holdout(labels: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """``(train, held-out)`` indices: the last ``round(share · n_c)`` images of each class are
    held out (the corpus is i.i.d. per class, so the last ones are as good as any)."""
    train, held = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(share * idx.size))
        train.append(idx[: idx.size - k])
        held.append(idx[idx.size - k :])
    return np.concatenate(train), np.concatenate(held)


@torch.no_grad()
def top1_accuracy(
    model: nn.Module, images: np.ndarray, labels: np.ndarray, device: torch.device, batch: int = 64
) -> float:
    """Share of ``images`` whose arg-max logit is their label (eval mode, no augmentation)."""
    if len(labels) == 0:
        return float("nan")
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        x = torch.stack([normalize_image(im) for im in images[i : i + batch]]).to(device)
        correct += int((model(x).argmax(1).cpu().numpy() == labels[i : i + batch]).sum())
    return correct / len(labels)


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    backbone: Mapping,
    num_classes: int,
    train: Mapping,
    seed: int,
    device: torch.device,
    fingerprint: str,
    out_weights: str | os.PathLike,
) -> tuple[BackboneClassifier, list[dict]]:
    """Train a :class:`BackboneClassifier` on ``(images, labels)`` with the resumable loop
    (``train``: steps, batch_size, optimizer, lr, momentum, weight_decay, poly_power, lr_mults,
    checkpoint_every, num_workers) and write its torchvision-layout weights to ``out_weights``
    atomically; the rolling checkpoint ``<out_weights>.resume`` lets a killed run resume.
    Returns the model and the loss history."""
    torch.manual_seed(seed)  # the fc and conv initialisation
    model = BackboneClassifier(backbone, num_classes)
    optimizer = build_optimizer(
        model.param_groups(),
        name=train["optimizer"],
        lr=train["lr"],
        weight_decay=train["weight_decay"],
        momentum=train["momentum"],
        lr_mults=train["lr_mults"],
    )
    history = train_steps(
        model=model,
        dataset=SeededDataset(CorpusSamples(images, labels), corpus_transform, seed),
        loss_fn=lambda net, batch: F.cross_entropy(net(batch["image"]), batch["label"]),
        optimizer=optimizer,
        steps=int(train["steps"]),
        batch_size=int(train["batch_size"]),
        seed=seed,
        device=device,
        poly_power=train["poly_power"],
        resume_path=f"{out_weights}.resume",
        fingerprint=fingerprint,
        checkpoint_every=int(train["checkpoint_every"]),
        num_workers=int(train.get("num_workers", 0)),
    )
    save_checkpoint(out_weights, model.weights())
    return model, history
