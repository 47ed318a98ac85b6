"""Where the ImageNet stand-in's weights live (rule ``pretrain_backbone``) and the DAG-time check
that every model entry naming one fits it. Torch-free: the workflow imports it."""

from __future__ import annotations

from collections.abc import Mapping

from wsss.fetch.catalog import architecture
from wsss.fetch.pretrained import model_entries

__all__ = ["stand_in_path", "check_stand_in"]


def stand_in_path(dataset: str, name: str) -> str:
    """The weights file rule ``pretrain_backbone`` writes for ``datasets.<dataset>.pretrain.
    backbones.<name>``; a recipe's ``pretrained:`` names this path to start from it."""
    return f"results/{dataset}/pretrain/{name}.pth"


def check_stand_in(dataset: str, spec: Mapping) -> None:
    """Raise ``ValueError`` (one line, naming the key) when a model of ``datasets.<dataset>``
    names a stand-in weights file under ``results/<dataset>/pretrain/`` that no
    ``pretrain.backbones`` entry writes, or whose architecture differs from the model's."""
    prefix = f"results/{dataset}/pretrain/"
    backbones = (spec.get("pretrain") or {}).get("backbones", {})
    for key, model in model_entries(spec, f"datasets.{dataset}"):
        value = model["pretrained"]
        if not (isinstance(value, str) and value.startswith(prefix) and value.endswith(".pth")):
            continue
        name = value[len(prefix) : -len(".pth")]
        if name not in backbones:
            raise ValueError(
                f"{key}.pretrained: {value} is written by no datasets.{dataset}.pretrain.backbones "
                f"entry (it has {sorted(backbones)})"
            )
        want, have = architecture(backbones[name]), architecture(model["net"]["backbone"])
        if want != have:
            raise ValueError(
                f"{key}.pretrained: {value} holds a {want} backbone, the model's is {have}"
            )
