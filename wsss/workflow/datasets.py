"""Per-dataset views of the workflow configuration: the experiments a dataset runs, a recipe's
effective train settings (``train_defaults`` merged under it), a seg model's train/infer
settings on it, and the checks of both (called by :func:`wsss.workflow.checks.check_references`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wsss.settings import SegInferSettings

__all__ = [
    "check_dataset_experiments",
    "check_seg_infer",
    "check_train_complete",
    "dataset_experiments",
    "seg_settings",
    "with_sources",
    "with_train_defaults",
]

# sections only weakly supervised experiments read
_WEAK_SECTIONS = ("cam", "pseudo_labels", "affinity")


def dataset_experiments(config: Mapping, dataset: str) -> list[str]:
    """The experiments that dataset runs (the rows of its ``miou.csv``):
    ``datasets.<dataset>.experiments``, or every experiment when the key is absent."""
    chosen = config["datasets"][dataset].get("experiments")
    return list(config["experiments"]) if chosen is None else list(chosen)


def with_train_defaults(config: Mapping) -> dict:
    """``config`` with each dataset's ``train_defaults`` merged under the ``train`` section of
    every recipe (``cam``, ``cam_methods.<method>``, ``affinity.<method>``, ``seg``): a key the
    recipe sets replaces the default (shallowly, as :func:`seg_settings` merges a seg model's
    own keys; ``lr_mults`` is replaced whole). The one place that merge happens: the workflow
    applies it once, before validation. ``config`` itself is not changed (YAML aliases share
    sections between datasets)."""
    datasets = {name: _dataset_with_train_defaults(ds) for name, ds in config["datasets"].items()}
    return {**config, "datasets": datasets}


def _recipes(dataset: Mapping) -> list[tuple[str, Mapping]]:
    """``(key, section)`` of every recipe of a dataset: the sections with a ``train`` part."""
    out = [(section, dataset[section]) for section in ("cam", "seg") if section in dataset]
    for section in ("cam_methods", "affinity"):
        out += [(f"{section}.{name}", spec) for name, spec in dataset.get(section, {}).items()]
    return out


def _dataset_with_train_defaults(dataset: Mapping) -> dict:
    defaults = dataset.get("train_defaults") or {}
    out = dict(dataset)
    for key, recipe in _recipes(dataset):
        merged = {**recipe, "train": {**defaults, **recipe.get("train", {})}}
        if "." in key:
            section, name = key.split(".", 1)
            out[section] = {**out[section], name: merged}
        else:
            out[key] = merged
    return out


def check_train_complete(config: Mapping, required: Sequence[str]) -> None:
    """Raise ``ValueError`` naming ``datasets.<name>.<recipe>.train.<key>`` when a recipe's
    train section, with :func:`with_train_defaults` applied, lacks a ``required`` key."""
    for ds_name, dataset in config["datasets"].items():
        for key, recipe in _recipes(dataset):
            missing = [k for k in required if k not in recipe.get("train", {})]
            if missing:
                raise ValueError(
                    f"datasets.{ds_name}.{key}.train.{missing[0]}: missing (set it there or in "
                    f"datasets.{ds_name}.train_defaults)"
                )


def seg_settings(dataset: Mapping, model: str, key: str) -> dict:
    """``seg.<key>`` (``train`` or ``infer``) of a dataset's config, with the keys that
    ``seg.models.<model>.<key>`` sets replacing the shared ones (e.g. CCNet's 769 crop)."""
    seg = dataset["seg"]
    return {**seg[key], **seg["models"][model].get(key, {})}


def check_seg_infer(name: str, dataset: Mapping) -> None:
    """Raise ``ValueError`` naming the key unless each seg model's inference settings (shared
    ``seg.infer`` plus the model's own) give ``crop_size`` and ``stride`` exactly when ``mode`` is
    ``slide`` (``whole``, the default, runs the model on the whole image)."""
    for model in dataset["seg"]["models"]:
        infer = seg_settings(dataset, model, "infer")
        try:
            SegInferSettings.from_mapping(infer)  # what infer_seg's script will build
        except ValueError as error:
            raise ValueError(
                f"datasets.{name}.seg.models.{model}.{error}; with datasets.{name}.seg.infer "
                f"merged in it is {infer}"
            ) from None


def with_sources(experiments: Mapping, names: list[str]) -> list[str]:
    """``names`` plus, transitively, the experiments they take CAMs, masks, a teacher or CDA
    instances from."""
    out, todo = [], list(names)
    while todo:
        name = todo.pop()
        if name in out or name not in experiments:
            continue
        out.append(name)
        exp = experiments[name]
        todo += [
            exp[k] for k in ("masks_from", "cams_from", "teacher", "instances_from") if k in exp
        ]
    return out


def check_dataset_experiments(config: Mapping) -> None:
    """Raise ``ValueError`` naming ``datasets.<name>.experiments`` (or the section it lacks)
    unless every listed name is an experiment, listed once; datasets of the ``cityscapes`` and
    ``ade20k`` layouts (no image-level WSSS setting, no background class) run only fully
    supervised experiments; and a dataset running a weak experiment has the sections weak
    experiments read (``cam``, ``pseudo_labels``, ``affinity``)."""
    experiments = config["experiments"]
    for ds_name, ds in config["datasets"].items():
        key = f"datasets.{ds_name}.experiments"
        chosen = ds.get("experiments")
        if chosen is not None:
            for name in chosen:
                if name not in experiments:
                    raise ValueError(
                        f"{key}: {name!r} is not a key of experiments ({sorted(experiments)})"
                    )
            if len(set(chosen)) != len(chosen):
                raise ValueError(f"{key}: lists an experiment twice ({list(chosen)})")
        weak = [
            n
            for n in dataset_experiments(config, ds_name)
            if experiments[n]["supervision"] == "weak"
        ]
        layout = ds.get("layout", "voc")
        if weak and layout != "voc":
            raise ValueError(
                f"{key}: the {layout} layout runs fully supervised experiments only, but "
                f"{weak[0]!r} is weak; list the experiments to run, e.g. [oracle_pcaa]"
            )
        for section in _WEAK_SECTIONS:
            if weak and section not in ds:
                raise ValueError(
                    f"datasets.{ds_name}.{section}: needed by the weak experiment {weak[0]!r} "
                    f"(or leave it out of {key})"
                )
