"""The backbone registry and strict loading of local pretrained weights."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from wsss.io import load_checkpoint
from wsss.models.resnet import ResNet
from wsss.models.resnet38 import ResNet38

__all__ = [
    "BACKBONES",
    "build_backbone",
    "backbone_from_config",
    "check_state_dict",
    "load_pretrained",
    "backbone_head_groups",
]

logger = logging.getLogger(__name__)


def check_state_dict(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike
) -> dict[str, torch.Tensor]:
    """``state`` without the ImageNet classifier, checked to fit ``model`` key for key.

    ``fc.weight``/``fc.bias`` are dropped; missing ``num_batches_tracked`` buffers are
    tolerated (old torchvision files lack them; BatchNorm fills them in). Every other missing,
    unexpected or wrongly shaped entry is refused. ``model`` may live on the meta device (only
    names and shapes are compared).

    Raises:
        ValueError: naming ``source`` and the missing/unexpected/mismatched keys.
    """
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{source} does not hold a flat state dict of tensors")
    state = {k: v for k, v in state.items() if k not in ("fc.weight", "fc.bias")}
    own = model.state_dict()
    missing = sorted(k for k in own.keys() - state.keys() if not k.endswith("num_batches_tracked"))
    unexpected = sorted(state.keys() - own.keys())
    shapes = sorted(
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own.keys() & state.keys()
        if state[k].shape != own[k].shape
    )
    if missing or unexpected or shapes:
        raise ValueError(
            f"state dict {source} does not match {type(model).__name__}: missing keys {missing}, "
            f"unexpected keys {unexpected}, shape mismatches {shapes}"
        )
    return state


def load_pretrained(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a local ImageNet state dict strictly into ``model`` (no downloads; rule
    ``fetch_weights`` writes these files, see :mod:`wsss.fetch`).

    The file is checked with :func:`check_state_dict` first.

    Raises:
        FileNotFoundError: naming ``path`` if it does not exist.
        ValueError: naming the file and the missing/unexpected/mismatched keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = load_checkpoint(path, remedy="replace it with a torchvision-format state dict file")
    state = check_state_dict(model, state, path)
    model.load_state_dict(state, strict=True)
    logger.info("loaded pretrained weights from %s (%d tensors)", path, len(state))


BACKBONES: dict[str, type[nn.Module]] = {"resnet": ResNet, "resnet38": ResNet38}


def build_backbone(name: str, **kwargs: object) -> nn.Module:
    """Build a backbone from :data:`BACKBONES` by name with constructor ``kwargs``.

    Raises:
        KeyError: listing the valid names if ``name`` is unknown.
    """
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; valid names: {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)


def backbone_from_config(config: Mapping) -> nn.Module:
    """Build a backbone from ``{"name": <BACKBONES key>, **constructor kwargs}``.

    Raises:
        ValueError: if ``config`` is not a mapping with a string ``"name"``.
        KeyError: listing the valid names if the name is unknown.
    """
    if not isinstance(config, Mapping) or not isinstance(config.get("name"), str):
        raise ValueError(f"backbone config must be a mapping with a 'name' key, got {config!r}")
    return build_backbone(config["name"], **{k: v for k, v in config.items() if k != "name"})


def backbone_head_groups(backbone: nn.Module, *heads: nn.Module | None) -> list[dict]:
    """The usual two optimizer groups: ``backbone`` (``lr_mult`` 1) and every module of ``heads``
    as ``head`` (10, the IRN/DeepLab convention); frozen parameters and empty groups left out."""
    head = [p for m in heads if m is not None for p in m.parameters()]
    groups = [
        {
            "name": "backbone",
            "lr_mult": 1.0,
            "params": [p for p in backbone.parameters() if p.requires_grad],
        },
        {"name": "head", "lr_mult": 10.0, "params": [p for p in head if p.requires_grad]},
    ]
    return [g for g in groups if g["params"]]
