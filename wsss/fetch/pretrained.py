"""``pretrained:`` values — a table name (or ``imagenet``), a local file, or ``none`` — where a
named file lives in the cache, and which model entries of a dataset would train from scratch.
Torch-free: the workflow imports it while it builds the DAG."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from wsss.fetch.catalog import WEIGHTS, architecture, imagenet_name

__all__ = [
    "check_pretrained",
    "is_scratch",
    "model_entries",
    "pretrained_file",
    "pretrained_name",
    "scratch_entries",
    "scratch_message",
]


def is_scratch(value: object) -> bool:
    """``pretrained: none`` (or YAML null): random initialisation."""
    return value is None or value == "none"


def pretrained_name(value: object, backbone: Mapping) -> str | None:
    """The table name a ``pretrained`` value refers to (``imagenet``: the entry that fits
    ``backbone``), or None for ``none`` and for local paths."""
    if is_scratch(value):
        return None
    if value == "imagenet":
        return imagenet_name(backbone)
    return value if value in WEIGHTS else None


def check_pretrained(value: object, backbone: Mapping, key: str) -> None:
    """Raise ``ValueError`` naming ``key`` when a table name (or ``imagenet``) does not fit the
    model's backbone: a wrong name fails here, at DAG time, not after the download."""
    if value == "imagenet" and imagenet_name(backbone) is None:
        raise ValueError(
            f"{key}: no ImageNet weights in the table fit the backbone {architecture(backbone)}; "
            f"name a local file or one of {sorted(WEIGHTS)}"
        )
    name = pretrained_name(value, backbone)
    if name is not None and architecture(WEIGHTS[name].backbone) != architecture(backbone):
        raise ValueError(
            f"{key}: {name!r} weights are for {architecture(WEIGHTS[name].backbone)}, the model's "
            f"backbone is {architecture(backbone)}"
        )


def pretrained_file(value: object, backbone: Mapping, cache: str | os.PathLike) -> str | None:
    """The weights file a model loads: ``<cache>/<name>.pth`` for table names (written by rule
    ``fetch_weights``), the path itself for anything else, None for ``none``."""
    if is_scratch(value):
        return None
    name = pretrained_name(value, backbone)
    return str(Path(cache) / f"{name}.pth") if name is not None else str(value)


def model_entries(node: object, key: str) -> Iterator[tuple[str, Mapping]]:
    """``(config key, entry)`` of every model entry (a mapping with ``pretrained`` and the
    constructor arguments ``net``) at or below ``node``, whose key is ``key``."""
    if isinstance(node, Mapping):
        if "pretrained" in node and "net" in node:
            yield key, node
        for child, value in node.items():
            yield from model_entries(value, f"{key}.{child}")


def scratch_entries(dataset: str, spec: Mapping) -> list[tuple[str, Mapping]]:
    """``(config key, model entry)`` of every model of ``datasets.<dataset>`` that would start
    from random weights (``pretrained: none``, not initialised from the CAM model either)."""
    return [
        (f"{key}.pretrained", model)
        for key, model in model_entries(spec, f"datasets.{dataset}")
        if is_scratch(model["pretrained"]) and not model.get("init_from_cam", False)
    ]


def scratch_message(dataset: str, key: str, backbone: Mapping, cache: str | os.PathLike) -> str:
    """The one-line refusal for a real dataset's model that would train from scratch."""
    name = imagenet_name(backbone)
    fix = (
        f"name ImageNet weights (e.g. imagenet = {name}; rule fetch_weights downloads them: "
        f"snakemake {Path(cache) / f'{name}.pth'})"
        if name
        else "name a local ImageNet weights file"
    )
    return (
        f"{key} is none: datasets.{dataset} would train from random weights, far below every "
        f"paper; {fix}, or set datasets.{dataset}.allow_scratch: true to train from scratch"
    )
