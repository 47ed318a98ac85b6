"""The CAM-method registry: one list of methods that the schema, the models, the recipes and the
workflow agree on; each method's training parts built from config.yaml's settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from wsss.cam.methods import CAM_METHODS, get_method
from wsss.models import CAM_MODELS
from wsss.training.cam_steps import (
    cpn_step_loss,
    eps_step_loss,
    multilabel_step_loss,
    seam_step_loss,
)
from wsss.workflow.datasets import with_train_defaults

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
CONFIG = with_train_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
SYNTH = CONFIG["datasets"]["synth"]


def settings(name: str) -> dict:
    """A method's settings in config.yaml's synth recipe (``cam`` for IRN's classifier)."""
    return SYNTH["cam"] if name == "cam" else SYNTH["cam_methods"][name]


def test_schema_lists_exactly_the_registered_methods():
    enum = SCHEMA["$defs"]["experiment"]["properties"]["cam_method"]["enum"]
    assert sorted(enum) == sorted(CAM_METHODS)
    # every method but IRN's classifier (datasets.<name>.cam) has a settings section
    sections = SCHEMA["$defs"]["dataset"]["properties"]["cam_methods"]["properties"]
    assert sorted(sections) == sorted(set(CAM_METHODS) - {"cam"})


def test_entries_are_consistent():
    for name, method in CAM_METHODS.items():
        assert method.name == name
        assert method.network in CAM_MODELS, name
        assert (method.recipe is None) == (method.teacher is not None), name
        if method.teacher is not None:  # self-training starts from a trained teacher's network
            teacher = CAM_METHODS[method.teacher]
            assert teacher.recipe is not None and teacher.network == method.network


def test_registry_imports_no_torch():
    """Snakemake imports the registry while it parses the workflow: it must stay light."""
    code = "import sys, wsss.cam.methods; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_saliency_needs():
    assert [n for n in CAM_METHODS if CAM_METHODS[n].needs_saliency(settings(n).get("loss"))] == [
        "eps",
        "smaf",  # config.yaml's synth SMAF denoises with prototypes + saliency
    ]
    smaf = CAM_METHODS["smaf"]
    assert not smaf.needs_saliency({**settings("smaf")["loss"], "denoise": "prototype"})
    assert not smaf.needs_saliency({**settings("smaf")["loss"], "denoise": "none"})


def _sample(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 256, (40, 50, 3), dtype=np.uint8),
        "labels": np.array([1, 0, 1], dtype=np.float32),
        "saliency": rng.random((40, 50)).astype(np.float32),
    }


@pytest.mark.parametrize(
    "name,step,extra",
    [
        ("cam", multilabel_step_loss, set()),
        ("seam", seam_step_loss, set()),
        ("cpn", cpn_step_loss, {"cp_mask", "cp_ratio"}),
        ("eps", eps_step_loss, {"saliency"}),
    ],
)
def test_training_parts_from_config(name, step, extra):
    spec = settings(name)
    loss_fn, transform = CAM_METHODS[name].training_parts(spec.get("loss"), spec["train"])
    assert getattr(loss_fn, "func", loss_fn) is step
    keywords = getattr(loss_fn, "keywords", {})
    expected = {
        "seam": {"view_scale": 0.3},
        "eps": {"tau": 0.4, "lam": 0.5},
    }.get(name, {})
    assert keywords == expected
    out = transform(_sample(), np.random.default_rng(1))
    crop = spec["train"]["crop_size"]
    assert set(out) == {"image", "labels"} | extra
    assert out["image"].shape == (3, crop, crop) and out["image"].dtype == torch.float32
    if "saliency" in extra:
        assert out["saliency"].shape == (1, crop, crop)
    if "cp_mask" in extra:
        mask = out["cp_mask"].numpy()
        assert mask.shape == (1, crop, crop) and set(np.unique(mask)) <= {0, 1}
        assert float(out["cp_ratio"]) == pytest.approx(mask.mean(), abs=1e-6)


def test_errors_name_the_method():
    with pytest.raises(ValueError, match=r"unknown CAM method 'nope'; choose from \['cam', "):
        get_method("nope")
    with pytest.raises(ValueError, match=r"'smaf' self-trains its eps teacher's network"):
        CAM_METHODS["smaf"].training_parts(settings("smaf")["loss"], settings("smaf")["train"])
    with pytest.raises(ValueError, match=r"needs its loss settings \(cam_methods\.seam\.loss\)"):
        CAM_METHODS["seam"].training_parts(None, settings("seam")["train"])


@pytest.mark.parametrize("name", [n for n, m in CAM_METHODS.items() if m.recipe is not None])
def test_every_recipe_builds_from_config_and_transforms_a_sample(name):
    """A method added to the registry is covered here once config.yaml's synth recipe has its
    settings: its parts build, its loss is a function of (model, batch), its transform crops."""
    spec = settings(name)
    loss_fn, transform = CAM_METHODS[name].training_parts(spec.get("loss"), spec["train"])
    assert callable(loss_fn)
    out = transform(_sample(), np.random.default_rng(2))
    crop = spec["train"]["crop_size"]
    assert out["image"].shape == (3, crop, crop)
    assert out["labels"].tolist() == [1, 0, 1]
