"""Cross-checks of the workflow configuration that a JSON schema cannot express."""

from __future__ import annotations

from collections.abc import Mapping

from wsss.fetch.catalog import ARCHIVES, WEIGHTS
from wsss.fetch.pretrained import (
    check_pretrained,
    is_scratch,
    model_entries,
    scratch_entries,
    scratch_message,
)
from wsss.refine.crf import CRFParams
from wsss.workflow.datasets import (
    check_dataset_experiments,
    check_seg_infer,
    dataset_experiments,
    seg_settings,
    with_sources,
)

__all__ = [
    "check_cam_methods",
    "check_dataset_experiments",
    "check_cams_from",
    "check_cda",
    "check_fetch_config",
    "check_teachers",
    "check_masks_from",
    "check_references",
    "check_scratch",
    "dataset_experiments",
    "seg_settings",
]


def check_references(config: Mapping) -> None:
    """Raise ``ValueError`` naming the key when a name refers to nothing.

    Checks ``default_datasets`` → ``datasets``, ``experiments.*.seg_model`` → the
    ``seg.models`` of every dataset that runs the experiment, ``experiments.*.masks_from`` → a
    weak experiment that makes its own pseudo masks, ``experiments.*.cams_from`` → a weak
    experiment that trains its own CAMs, ``experiments.*.cam_method`` →
    ``datasets.*.cam_methods``, ``experiments.*.teacher`` → an ``eps`` experiment,
    ``experiments.*.instances_from`` → a weak experiment that makes its own pseudo masks,
    ``augment: cda`` → ``datasets.*.cda``, ``datasets.*.pseudo_labels.crf`` and
    ``datasets.*.affinity.*.labels.crf`` → ``crf_presets``, the stage splits →
    ``datasets.*.splits``, the CRF ``gt_prob`` that a ``labels`` unary needs, and
    ``datasets.*.experiments`` (:func:`check_dataset_experiments`). The checks that concern a
    dataset's experiments cover those it runs (:func:`dataset_experiments`) and the ones they
    build on.
    """
    check_masks_from(config["experiments"])
    check_cams_from(config["experiments"])
    datasets = config["datasets"]
    check_dataset_experiments(config)
    check_teachers(config["experiments"])
    runs = {name: dataset_experiments(config, name) for name in datasets}
    # experiments whose CAMs or masks the listed ones build on run (in part) too
    needs = {name: with_sources(config["experiments"], chosen) for name, chosen in runs.items()}
    check_cam_methods(config["experiments"], datasets, needs)
    check_cda(config["experiments"], datasets, needs)
    check_fetch_config(config)
    for name in config["default_datasets"]:
        if name not in datasets:
            raise ValueError(
                f"default_datasets: {name!r} is not a key of datasets ({sorted(datasets)})"
            )
    for preset, params in config["crf_presets"].items():
        CRFParams.parse(params, f"crf_presets.{preset}")  # what the CRF stages will parse
    for ds_name, ds in datasets.items():
        check_seg_infer(ds_name, ds)
        crf_keys = {}
        if "pseudo_labels" in ds:
            crf_keys["pseudo_labels.crf"] = ds["pseudo_labels"]["crf"]
        for method, spec in ds.get("affinity", {}).items():
            crf_keys[f"affinity.{method}.labels.crf"] = spec["labels"]["crf"]
        for key, crf in crf_keys.items():
            if crf not in config["crf_presets"]:
                raise ValueError(
                    f"datasets.{ds_name}.{key}: {crf!r} is not a key of "
                    f"crf_presets ({sorted(config['crf_presets'])})"
                )
        for stage, split in ds["stage_splits"].items():
            if split not in ds["splits"]:
                raise ValueError(
                    f"datasets.{ds_name}.stage_splits.{stage}: split {split!r} is not "
                    f"a key of datasets.{ds_name}.splits ({sorted(ds['splits'])})"
                )
        for exp_name in runs[ds_name]:
            exp = config["experiments"][exp_name]
            if exp["seg_model"] not in ds["seg"]["models"]:
                raise ValueError(
                    f"experiments.{exp_name}.seg_model: {exp['seg_model']!r} is not a key of "
                    f"datasets.{ds_name}.seg.models ({sorted(ds['seg']['models'])})"
                )


def check_masks_from(experiments: Mapping) -> None:
    """Raise ``ValueError`` naming ``experiments.<name>.masks_from`` (or ``.refine``) unless every
    ``masks_from`` belongs to a weak experiment without ``refine`` and names another weak
    experiment that has no ``masks_from`` itself (one that makes its own pseudo masks)."""
    for name, exp in experiments.items():
        source = exp.get("masks_from")
        if source is None:
            continue
        key = f"experiments.{name}.masks_from"
        if exp["supervision"] != "weak":
            raise ValueError(f"{key}: only weak experiments train on pseudo masks")
        if "refine" in exp:
            raise ValueError(
                f"experiments.{name}.refine: unused, the pseudo masks come from {source!r} "
                "(masks_from); remove it"
            )
        if source not in experiments:
            raise ValueError(
                f"{key}: {source!r} is not a key of experiments ({sorted(experiments)})"
            )
        if source == name:
            raise ValueError(f"{key}: an experiment cannot take masks from itself")
        if experiments[source]["supervision"] != "weak":
            raise ValueError(
                f"{key}: {source!r} is not a weak experiment (it makes no pseudo masks)"
            )
        if experiments[source].get("masks_from") is not None:
            raise ValueError(
                f"{key}: {source!r} takes its masks from {experiments[source]['masks_from']!r} "
                "itself; name the experiment that makes them"
            )


def check_cams_from(experiments: Mapping) -> None:
    """Raise ``ValueError`` naming ``experiments.<name>.cams_from`` unless every ``cams_from``
    belongs to a weak experiment that refines CAMs itself (has ``refine``, no ``masks_from``) and
    names another weak experiment that trains its own CAMs (no ``cams_from``/``masks_from``)."""
    for name, exp in experiments.items():
        source = exp.get("cams_from")
        if source is None:
            continue
        key = f"experiments.{name}.cams_from"
        if exp["supervision"] != "weak" or "refine" not in exp:
            raise ValueError(f"{key}: only weak experiments with a refine method use CAMs")
        if source not in experiments:
            raise ValueError(
                f"{key}: {source!r} is not a key of experiments ({sorted(experiments)})"
            )
        if source == name:
            raise ValueError(f"{key}: an experiment cannot take CAMs from itself")
        spec = experiments[source]
        if spec["supervision"] != "weak" or spec.get("masks_from") or spec.get("cams_from"):
            raise ValueError(
                f"{key}: {source!r} does not train its own CAMs (it must be weak, without "
                "masks_from and cams_from)"
            )


def check_cam_methods(
    experiments: Mapping, datasets: Mapping, runs: Mapping[str, list[str]] | None = None
) -> None:
    """Raise ``ValueError`` naming ``experiments.<name>.cam_method`` unless it belongs to a weak
    experiment that trains its own CAMs and, for methods other than ``cam``, every dataset that
    runs it (``runs``: dataset → experiment names; None = all) has ``cam_methods.<method>``."""
    for name, exp in experiments.items():
        method = exp.get("cam_method", "cam")
        if "cam_method" not in exp:
            continue
        key = f"experiments.{name}.cam_method"
        if exp["supervision"] != "weak" or exp.get("masks_from") or exp.get("cams_from"):
            raise ValueError(
                f"{key}: only weak experiments that train their own CAMs (no masks_from or "
                "cams_from) choose a CAM method"
            )
        if method == "cam":
            continue
        for ds_name, ds in datasets.items():
            if runs is not None and name not in runs[ds_name]:
                continue
            if method not in (ds.get("cam_methods") or {}):
                raise ValueError(
                    f"{key}: {method!r} needs datasets.{ds_name}.cam_methods.{method} "
                    f"(it has {sorted(ds.get('cam_methods') or {})})"
                )


def check_teachers(experiments: Mapping) -> None:
    """Raise ``ValueError`` naming ``experiments.<name>.teacher`` unless exactly the ``smaf``
    experiments have a teacher, and it is an experiment whose cam_method is ``eps``."""
    for name, exp in experiments.items():
        key = f"experiments.{name}.teacher"
        smaf = exp.get("cam_method") == "smaf"
        if smaf != ("teacher" in exp):
            raise ValueError(
                f"{key}: cam_method 'smaf' needs a teacher and only smaf experiments take one"
            )
        if not smaf:
            continue
        teacher = exp["teacher"]
        if experiments.get(teacher, {}).get("cam_method") != "eps":
            raise ValueError(
                f"{key}: {teacher!r} must be an experiment with cam_method 'eps' (SMAF "
                f"self-trains the EPS network); experiments: {sorted(experiments)}"
            )


def check_cda(
    experiments: Mapping, datasets: Mapping, runs: Mapping[str, list[str]] | None = None
) -> None:
    """Raise ``ValueError`` naming the key unless every ``augment: cda`` experiment trains IRN's
    classifier itself, has ``instances_from`` naming another weak experiment that makes its own
    pseudo masks, and every dataset that runs it (``runs``; None = all) has a ``cda`` section."""
    for name, exp in experiments.items():
        cda = exp.get("augment", "none") == "cda"
        if cda != ("instances_from" in exp):
            raise ValueError(
                f"experiments.{name}.instances_from: augment 'cda' needs instances_from "
                "and only cda experiments take one"
            )
        if not cda:
            continue
        if exp.get("cam_method", "cam") != "cam" or exp.get("cams_from") or exp.get("masks_from"):
            raise ValueError(
                f"experiments.{name}.augment: cda trains IRN's classifier (cam_method cam, "
                "no cams_from or masks_from)"
            )
        source = exp["instances_from"]
        spec = experiments.get(source)
        if (
            spec is None
            or source == name
            or spec["supervision"] != "weak"
            or spec.get("masks_from")
        ):
            raise ValueError(
                f"experiments.{name}.instances_from: {source!r} must be another weak experiment "
                f"that makes its own pseudo masks; experiments: {sorted(experiments)}"
            )
        for ds_name, ds in datasets.items():
            if runs is not None and name not in runs[ds_name]:
                continue
            if "cda" not in ds:
                raise ValueError(f"experiments.{name}.augment: cda needs datasets.{ds_name}.cda")


def check_fetch_config(config: Mapping) -> None:
    """Raise ``ValueError`` naming the key when ``weights.sources`` / ``downloads.sources`` name
    no table entry (:mod:`wsss.fetch.catalog`), a ``saliency_source`` is no archive, or a
    model's ``pretrained`` is neither ``none``, ``imagenet``, a weights name that fits its
    backbone, nor a file path (a value with ``/`` or ``.``)."""
    for section, table in (("weights", WEIGHTS), ("downloads", ARCHIVES)):
        for name in config[section]["sources"]:
            if name not in table:
                raise ValueError(
                    f"{section}.sources.{name}: not a name of the table ({sorted(table)})"
                )
    for ds_name, ds in config["datasets"].items():
        source = ds.get("saliency_source")
        if source is not None and source not in ARCHIVES:
            raise ValueError(
                f"datasets.{ds_name}.saliency_source: {source!r} is not an archive name "
                f"({sorted(ARCHIVES)})"
            )
        for key, model in model_entries(ds, f"datasets.{ds_name}"):
            value = model["pretrained"]
            key = f"{key}.pretrained"
            path_like = isinstance(value, str) and ("/" in value or "." in value)
            if not (is_scratch(value) or value == "imagenet" or value in WEIGHTS or path_like):
                raise ValueError(
                    f"{key}: {value!r} is none of none, imagenet, a weights name "
                    f"({', '.join(sorted(WEIGHTS))}) or a file path"
                )
            check_pretrained(value, model["net"]["backbone"], key)


def check_scratch(config: Mapping, dataset: str) -> None:
    """Raise ``ValueError`` (one line naming the key and the fetch_weights target) when a real
    dataset would train a model from random weights without ``allow_scratch: true``; the
    synthetic benchmark trains from scratch by design."""
    spec = config["datasets"][dataset]
    if "synthetic" in spec or spec.get("allow_scratch", False):
        return
    cache = config["weights"]["cache"].rstrip("/")
    for key, model in scratch_entries(dataset, spec):
        raise ValueError(scratch_message(dataset, key, model["net"]["backbone"], cache))
