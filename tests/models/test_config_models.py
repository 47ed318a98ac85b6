"""Every model entry of config.yaml, and of config.yaml with tests/workflow/tiny.yaml merged in,
builds with the constructors the stages call, on the ``meta`` device (shapes, no memory, no
weights): the schema and the constructors cannot drift apart unnoticed, though CI never trains
the full-size VOC, COCO, Cityscapes or ADE20K networks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from snakemake.utils import update_config

from wsss.cam.methods import get_method
from wsss.models import build_affinity_model, build_cam_model, build_seg_model
from wsss.workflow.datasets import with_train_defaults

REPO = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((REPO / "config.yaml").read_text())
TINY = copy.deepcopy(BASE)
update_config(TINY, yaml.safe_load((REPO / "tests" / "workflow" / "tiny.yaml").read_text()))
CONFIGS = {"config.yaml": with_train_defaults(BASE), "tiny.yaml": with_train_defaults(TINY)}


def _entries(config: dict) -> list[tuple[str, str, str, dict, int]]:
    """``(config key, kind, name, entry, classes)`` of every model entry."""
    out = []
    for ds_name, ds in config["datasets"].items():
        classes, key = len(ds["classes"]), f"datasets.{ds_name}"
        if "cam" in ds:
            out.append((f"{key}.cam.model", "cam", "cam", ds["cam"]["model"], classes))
        for method, spec in ds.get("cam_methods", {}).items():
            if "model" in spec:  # smaf self-trains its teacher's (eps) network
                key_m = f"{key}.cam_methods.{method}.model"
                out.append((key_m, "cam", method, spec["model"], classes))
        for method, spec in ds.get("affinity", {}).items():
            key_m = f"{key}.affinity.{method}.model"
            out.append((key_m, "affinity", method, spec["model"], classes))
        for name, entry in ds["seg"]["models"].items():
            out.append((f"{key}.seg.models.{name}", "seg", name, entry, classes))
    return out


ENTRIES = [(f"{file}:{key}", *rest) for file, c in CONFIGS.items() for key, *rest in _entries(c)]


def test_every_dataset_section_with_models_is_covered():
    keys = {key for key, *_ in ENTRIES}
    # synth, voc: cam + seam/cpn/eps + irn/affinitynet + 3 seg models; coco: voc's minus the CAM
    # methods; cityscapes: ccnet, pcaa; ade20k: pcaa; synth_voc: synth's 9
    assert len([k for k in keys if k.startswith("config.yaml:")]) == 9 + 9 + 6 + 2 + 1 + 9
    assert "tiny.yaml:datasets.synth.seg.models.pcaa" in keys


@pytest.mark.parametrize(
    ("key", "kind", "name", "entry", "classes"), [pytest.param(*e, id=e[0]) for e in ENTRIES]
)
def test_model_entry_builds_on_the_meta_device(key, kind, name, entry, classes):
    kwargs = dict(entry["net"])
    with torch.device("meta"):
        if kind == "seg":
            net = build_seg_model(name, num_classes=classes, **kwargs)
        elif kind == "affinity":
            net = build_affinity_model(name, **kwargs)
        else:  # as the train_cam stage builds it (the method registry's network and arguments)
            method = get_method(name)
            kwargs.update(method.network_args)
            net = build_cam_model(method.network, num_fg_classes=classes - 1, **kwargs)
    params = list(net.parameters())
    assert params and all(p.is_meta for p in params), key
    assert hasattr(net, "backbone"), key  # where the stages load the pretrained weights
