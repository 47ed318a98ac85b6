"""config.yaml is valid, the schema rejects unknown keys, and dangling names are named."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from wsss.config import check_references

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_default_config_is_valid():
    jsonschema.validate(CONFIG, SCHEMA)
    check_references(CONFIG)


@pytest.mark.parametrize(
    "path",
    [
        ("datasets", "synth", "cam", "train"),
        ("datasets", "synth", "synthetic"),
        ("crf_presets", "irn_label", "bilateral"),
        ("experiments", "baseline"),
        (),
    ],
)
def test_unknown_key_rejected_everywhere(path):
    config = copy.deepcopy(CONFIG)
    node = config
    for key in path:
        node = node[key]
    node["no_such_key"] = 1
    with pytest.raises(jsonschema.ValidationError, match="no_such_key"):
        jsonschema.validate(config, SCHEMA)


def test_wrong_type_rejected():
    config = copy.deepcopy(CONFIG)
    config["datasets"]["synth"]["cam"]["train"]["steps"] = "many"
    with pytest.raises(jsonschema.ValidationError, match="many"):
        jsonschema.validate(config, SCHEMA)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["default_datasets"].append("coco"), "default_datasets: 'coco'"),
        (
            lambda c: c["datasets"]["synth"]["pseudo_labels"].update(crf="fast"),
            "datasets.synth.pseudo_labels.crf: 'fast'",
        ),
        (
            lambda c: c["datasets"]["synth"]["stage_splits"].update(eval_val="test"),
            "datasets.synth.stage_splits.eval_val: split 'test'",
        ),
        (
            lambda c: c["experiments"]["oracle"].update(seg_model="unet"),
            "experiments.oracle.seg_model: 'unet'",
        ),
    ],
)
def test_dangling_references_named(edit, message):
    config = copy.deepcopy(CONFIG)
    edit(config)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        check_references(config)
