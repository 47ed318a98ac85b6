"""DAG-time config checks (wsss.config_checks): each case of issue 21 items 7 and 8 gives one
line naming the key (and the file and line where a file is involved)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from wsss.config_checks import (
    MAX_CROP_SIZE,
    check_config_values,
    check_empty_overlay_sections,
    check_schema,
    key_line,
    load_config_file,
)
from wsss.workflow.datasets import with_train_defaults

REPO = Path(__file__).resolve().parents[1]
CONFIG = with_train_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_default_config_passes():
    check_schema(CONFIG, SCHEMA, [REPO / "config.yaml"])
    check_config_values(CONFIG)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(
    "path",
    [
        ("datasets", "synth", "cam", "train", "lr"),
        ("datasets", "voc", "seg", "train", "weight_decay"),
        ("crf_presets", "deeplab", "bilateral", "srgb"),
        ("datasets", "synth", "synthetic", "clutter"),
    ],
)
def test_non_finite_numbers_named(path, value):
    config = copy.deepcopy(CONFIG)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValueError, match=rf"^{'.'.join(path)}: .* is not a finite number$"):
        check_config_values(config)


def test_yaml_nan_passes_the_schema_but_not_the_value_check():
    # the gap of issue 21: YAML's .nan satisfies exclusiveMinimum (every comparison is False)
    config = copy.deepcopy(CONFIG)
    config["datasets"]["synth"]["cam"]["train"]["lr"] = yaml.safe_load(".nan")
    check_schema(config, SCHEMA, [])
    with pytest.raises(ValueError, match="datasets.synth.cam.train.lr"):
        check_config_values(config)


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("cam", "eval", "sweep"), {"start": 0.9, "stop": 0.1, "step": 0.01}, "start 0.9 is above"),
        (("cam", "train", "scale_range"), [1.2, 0.8], r"\[1.2, 0.8\] is reversed"),
        (("synthetic", "image_size_range"), [112, 80], r"\[112, 80\] is reversed"),
        (("cda", "ratio_range"), [0.7, 0.1], r"\[0.7, 0.1\] is reversed"),
    ],
)
def test_reversed_ranges_named(path, value, message):
    config = copy.deepcopy(CONFIG)
    node = config["datasets"]["synth"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    check_schema(config, SCHEMA, [])  # the schema lets it through
    with pytest.raises(ValueError, match=rf"^datasets\.synth\.{'.'.join(path)}: {message}"):
        check_config_values(config)


def test_equal_range_ends_accepted():
    config = copy.deepcopy(CONFIG)
    config["datasets"]["synth"]["cam"]["eval"]["sweep"].update(start=0.5, stop=0.5)
    config["datasets"]["synth"]["cam"]["train"]["scale_range"] = [1.0, 1.0]
    check_config_values(config)


@pytest.mark.parametrize(
    "section",
    [("synth", "seg", "train"), ("synth", "cam", "train"), ("cityscapes", "seg", "infer")],
)
def test_crop_size_capped(section):
    config = copy.deepcopy(CONFIG)
    node = config["datasets"]
    for key in section:
        node = node[key]
    node["crop_size"] = MAX_CROP_SIZE
    check_config_values(config)  # the cap itself is allowed
    node["crop_size"] = 100000
    with pytest.raises(ValueError, match=rf"^datasets\.{'.'.join(section)}\.crop_size: 100000 "):
        check_config_values(config)


def test_unknown_top_level_key_names_file_line_and_allowed_keys(tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("report:\n  gallery_images: 2\nbogus: 1\n")
    config = {**copy.deepcopy(CONFIG), "bogus": 1}
    with pytest.raises(ValueError) as caught:
        check_schema(config, SCHEMA, [REPO / "config.yaml", overlay])
    message = str(caught.value)
    assert message.startswith(f"{overlay}:3: unknown key bogus (allowed in <top level>: ")
    allowed = sorted(SCHEMA["properties"])
    assert message.endswith(", ".join(allowed) + ")")
    assert "\n" not in message


def test_nested_unknown_key_found_in_config_yaml(tmp_path):
    base = tmp_path / "config.yaml"
    base.write_text("report:\n  gallery_images: 2\n  galery: 3\n")
    config = copy.deepcopy(CONFIG)
    config["report"]["galery"] = 3
    with pytest.raises(
        ValueError,
        match=rf"^{base}:3: unknown key report.galery \(allowed in "
        r"report: gallery_images\)$",
    ):
        check_schema(config, SCHEMA, [base, tmp_path / "absent.yaml"])


def test_wrong_value_named_with_file_and_line(tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("datasets:\n  synth:\n    cam:\n      train:\n        steps: many\n")
    config = copy.deepcopy(CONFIG)
    config["datasets"]["synth"]["cam"]["train"]["steps"] = "many"
    with pytest.raises(ValueError, match=rf"^{overlay}:5: datasets.synth.cam.train.steps: 'many'"):
        check_schema(config, SCHEMA, [REPO / "config.yaml", overlay])


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets:\n  synth:\n    seed: [1\n")
    expected = rf"^{bad}:4: not valid YAML \(while parsing a flow sequence started on line 3"
    with pytest.raises(ValueError, match=expected) as caught:
        load_config_file(bad)
    assert "\n" not in str(caught.value)
    bad.write_text("a: 1\n\tb: 2\n")  # a tab in the indentation
    with pytest.raises(ValueError, match=rf"^{bad}:2: not valid YAML"):
        load_config_file(bad)


def test_key_line_follows_the_path(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a:\n  b: 1\n  c:\n    d: 2\ne: {f: 3}\n")
    assert key_line(path, ["a", "c", "d"]) == 4
    assert key_line(path, ["e", "f"]) == 5
    assert key_line(path, ["a", "x"]) is None


def test_empty_overlay_section_refused(tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("report: {gallery_images: 2}\nexperiments: {}\n")
    with pytest.raises(
        ValueError,
        match=rf"^{overlay}:2: experiments: {{}} changes nothing .*"
        r"datasets.<name>.experiments$",
    ):
        check_empty_overlay_sections(CONFIG, [overlay])
    overlay.write_text("datasets:\n  synth:\n    cam: {}\n")
    with pytest.raises(ValueError, match=rf"^{overlay}:3: datasets.synth.cam: {{}} changes"):
        check_empty_overlay_sections(CONFIG, [overlay])


def test_empty_overlay_section_over_an_empty_one_accepted(tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("weights: {sources: {}}\nreport: {gallery_images: 2}\n")
    check_empty_overlay_sections(CONFIG, [overlay])  # weights.sources is {} already


def test_command_line_names_the_bad_file(tmp_path, capsys):
    from wsss.config_checks import main

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("a: 1\n")
    bad.write_text("a: [1\n")
    assert main([str(good)]) == 0
    assert main([str(good), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"{bad}:2: not valid YAML")
