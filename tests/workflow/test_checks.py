"""config.yaml is valid, the schema rejects unknown keys, and dangling names are named."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from wsss.workflow.checks import check_references, dataset_experiments, seg_settings
from wsss.workflow.datasets import check_train_complete, with_train_defaults

REPO = Path(__file__).resolve().parents[2]
CONFIG = with_train_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_default_config_is_valid():
    jsonschema.validate(CONFIG, SCHEMA)
    check_references(CONFIG)


@pytest.mark.parametrize(
    "path",
    [
        ("datasets", "synth", "cam", "train"),
        ("datasets", "synth", "train_defaults"),
        ("datasets", "synth", "synthetic"),
        ("crf_presets", "irn_label", "bilateral"),
        ("experiments", "baseline"),
        ("experiments", "ccnet"),
        ("datasets", "synth", "seg", "models"),  # an unknown model name
        ("datasets", "synth", "seg", "models", "ccnet"),
        ("datasets", "synth", "seg", "models", "deeplab", "loss"),
        ("datasets", "voc", "seg", "models", "ccnet", "loss", "ohem"),
        ("datasets", "voc", "seg", "models", "ccnet", "net"),  # an unknown constructor argument
        ("datasets", "voc", "seg", "models", "ccnet", "net", "backbone"),
        ("datasets", "voc", "cam", "model", "net"),
        ("datasets", "voc", "cam_methods", "eps", "model", "net"),
        ("datasets", "voc", "affinity", "irn", "model", "net"),
        ("datasets", "synth", "seg", "models", "pcaa"),
        ("datasets", "synth", "seg", "models", "pcaa", "loss"),
        ("datasets", "synth", "seg", "infer"),
        ("datasets", "voc", "seg", "models", "pcaa", "train"),
        ("datasets", "cityscapes", "seg", "models", "ccnet", "infer"),
        ("datasets", "cityscapes"),
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
        (lambda c: c["default_datasets"].append("kitti"), "default_datasets: 'kitti'"),
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
        # the CRF presets are parsed as the stages parse them, at DAG time
        (
            lambda c: c["crf_presets"]["irn_label"].pop("gt_prob"),
            "crf_presets.irn_label: missing CRF parameter 'gt_prob'",
        ),
        (
            lambda c: c["crf_presets"]["deeplab"]["gaussian"].update(sxy=0),
            "crf_presets.deeplab: CRF parameter 'gaussian.sxy' must be > 0, got 0",
        ),
    ],
)
def test_dangling_references_named(edit, message):
    config = copy.deepcopy(CONFIG)
    edit(config)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        check_references(config)


@pytest.mark.parametrize(
    "path, key",
    [
        (("datasets", "synth", "seg", "models", "ccnet", "net"), "recurrence"),
        (("datasets", "synth", "seg", "models", "ccnet"), "net"),
        (("datasets", "synth", "cam", "model", "net"), "backbone"),
        (("datasets", "synth", "seg", "models", "ccnet"), "loss"),
        (("datasets", "voc", "seg", "models", "deeplab"), "loss"),
        (("datasets", "synth", "seg", "models", "ccnet", "loss"), "ohem"),
        (("datasets", "voc", "seg", "models", "ccnet", "loss", "ohem"), "min_kept"),
        (("experiments", "baseline"), "refine"),  # weak without masks_from needs refine
        (("datasets", "synth", "seg", "models", "pcaa", "net"), "bins"),
        (("datasets", "synth", "seg", "models", "pcaa", "loss"), "cls_weight"),
        (("datasets", "cityscapes", "seg", "models", "pcaa", "loss"), "focal_gamma"),
        (("datasets", "cityscapes", "seg", "infer"), "scales"),
    ],
)
def test_required_keys(path, key):
    config = copy.deepcopy(CONFIG)
    node = config
    for k in path:
        node = node[k]
    del node[key]
    with pytest.raises(jsonschema.ValidationError, match=key):
        jsonschema.validate(config, SCHEMA)


def test_masks_from_replaces_refine_and_ohem_may_be_null():
    config = copy.deepcopy(CONFIG)
    assert "refine" not in config["experiments"]["ccnet"]
    config["datasets"]["synth"]["seg"]["models"]["ccnet"]["loss"]["ohem"] = None
    config["experiments"]["x"] = {"supervision": "weak", "masks_from": "ccnet", "seg_model": "?"}
    jsonschema.validate(config, SCHEMA)  # the schema allows it; check_references does not
    for bad in ({"thresh": 1.5, "min_kept": 1}, {"thresh": 0.7, "min_kept": -1}):
        config["datasets"]["synth"]["seg"]["models"]["ccnet"]["loss"]["ohem"] = bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(config, SCHEMA)


@pytest.mark.parametrize(
    "experiment, message",
    [
        (
            {"supervision": "weak", "masks_from": "nowhere", "seg_model": "deeplab"},
            "experiments.new.masks_from: 'nowhere' is not a key of experiments",
        ),
        (
            {"supervision": "weak", "masks_from": "oracle", "seg_model": "deeplab"},
            "experiments.new.masks_from: 'oracle' is not a weak experiment",
        ),
        (
            {"supervision": "weak", "masks_from": "ccnet", "seg_model": "deeplab"},
            "experiments.new.masks_from: 'ccnet' takes its masks from 'baseline'",
        ),
        (
            {"supervision": "weak", "masks_from": "new", "seg_model": "deeplab"},
            "experiments.new.masks_from: an experiment cannot take masks from itself",
        ),
        (
            {"supervision": "full", "masks_from": "baseline", "seg_model": "deeplab"},
            "experiments.new.masks_from: only weak experiments",
        ),
        (
            {"supervision": "weak", "refine": "crf", "masks_from": "baseline", "seg_model": "x"},
            "experiments.new.refine: unused",
        ),
    ],
)
def test_bad_masks_from_named(experiment, message):
    config = copy.deepcopy(CONFIG)
    config["experiments"]["new"] = experiment
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        check_references(config)


def test_masks_from_valid_chain_accepted():
    config = copy.deepcopy(CONFIG)
    assert config["experiments"]["ccnet"]["masks_from"] == "baseline"
    config["experiments"]["second"] = {
        "supervision": "weak",
        "masks_from": "baseline",
        "seg_model": "deeplab",
    }
    check_references(config)


@pytest.mark.parametrize(
    "experiment, message",
    [
        (
            {
                "supervision": "weak",
                "refine": "irn",
                "cams_from": "nowhere",
                "seg_model": "deeplab",
            },
            "experiments.new.cams_from: 'nowhere' is not a key of experiments",
        ),
        (
            {"supervision": "weak", "refine": "irn", "cams_from": "irn", "seg_model": "deeplab"},
            "experiments.new.cams_from: 'irn' does not train its own CAMs",
        ),
        (
            {"supervision": "weak", "refine": "irn", "cams_from": "oracle", "seg_model": "deeplab"},
            "experiments.new.cams_from: 'oracle' does not train its own CAMs",
        ),
        (
            {"supervision": "weak", "refine": "crf", "cams_from": "new", "seg_model": "deeplab"},
            "experiments.new.cams_from: an experiment cannot take CAMs from itself",
        ),
        (
            {"supervision": "full", "cams_from": "baseline", "seg_model": "deeplab"},
            "experiments.new.cams_from: only weak experiments with a refine method",
        ),
    ],
)
def test_bad_cams_from_named(experiment, message):
    config = copy.deepcopy(CONFIG)
    config["experiments"]["irn"] = {
        "supervision": "weak",
        "cams_from": "baseline",
        "refine": "irn",
        "seg_model": "deeplab",
    }
    check_references(config)  # a valid cams_from
    config["experiments"]["new"] = experiment
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        check_references(config)


def test_affinity_crf_preset_checked():
    config = copy.deepcopy(CONFIG)
    config["datasets"]["voc"]["affinity"]["irn"]["labels"]["crf"] = "nope"
    with pytest.raises(ValueError, match=r"datasets\.voc\.affinity\.irn\.labels\.crf: 'nope'"):
        check_references(config)


@pytest.mark.parametrize(
    "name, experiment, message",
    [
        (
            "smaf2",
            {"supervision": "weak", "cam_method": "smaf", "refine": "crf", "seg_model": "deeplab"},
            "experiments.smaf2.teacher: cam_method 'smaf' needs a teacher",
        ),
        (
            "smaf2",
            {
                "supervision": "weak",
                "cam_method": "smaf",
                "teacher": "baseline",
                "refine": "crf",
                "seg_model": "deeplab",
            },
            "experiments.smaf2.teacher: 'baseline' must be an experiment with cam_method 'eps'",
        ),
        (
            "eps2",
            {
                "supervision": "weak",
                "cam_method": "eps",
                "teacher": "eps",
                "refine": "crf",
                "seg_model": "deeplab",
            },
            "experiments.eps2.teacher: cam_method 'smaf' needs a teacher and only smaf",
        ),
        (
            "cda2",
            {"supervision": "weak", "augment": "cda", "refine": "crf", "seg_model": "deeplab"},
            "experiments.cda2.instances_from: augment 'cda' needs instances_from",
        ),
        (
            "cda2",
            {
                "supervision": "weak",
                "augment": "cda",
                "instances_from": "ccnet",
                "refine": "crf",
                "seg_model": "deeplab",
            },
            "experiments.cda2.instances_from: 'ccnet' must be another weak experiment",
        ),
        (
            "cda2",
            {
                "supervision": "weak",
                "augment": "cda",
                "cam_method": "seam",
                "instances_from": "baseline",
                "refine": "crf",
                "seg_model": "deeplab",
            },
            "experiments.cda2.augment: cda trains IRN's classifier",
        ),
    ],
)
def test_bad_teacher_and_cda_references_named(name, experiment, message):
    config = copy.deepcopy(CONFIG)
    check_references(config)
    config["experiments"][name] = experiment
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        check_references(config)


def test_cda_needs_the_dataset_section():
    config = copy.deepcopy(CONFIG)
    del config["datasets"]["voc"]["cda"]
    with pytest.raises(
        ValueError, match=r"experiments\.cda\.augment: cda needs datasets\.voc\.cda"
    ):
        check_references(config)


def test_dataset_experiments_default_to_all_and_follow_the_list():
    assert dataset_experiments(CONFIG, "voc") == list(CONFIG["experiments"])
    assert dataset_experiments(CONFIG, "synth") == [
        e for e in CONFIG["experiments"] if e not in ("affinitynet", "irn")
    ]
    assert dataset_experiments(CONFIG, "cityscapes") == ["oracle_ccnet", "oracle_pcaa"]
    assert dataset_experiments(CONFIG, "ade20k") == ["oracle_pcaa"]
    # Cityscapes has no deeplab entry: only the experiments it runs need their seg model
    assert "deeplab" not in CONFIG["datasets"]["cityscapes"]["seg"]["models"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["datasets"]["cityscapes"].update(experiments=["oracle_pcaa", "nope"]),
            "datasets.cityscapes.experiments: 'nope' is not a key of experiments",
        ),
        (
            lambda c: c["datasets"]["cityscapes"].update(experiments=["oracle_pcaa"] * 2),
            "datasets.cityscapes.experiments: lists an experiment twice",
        ),
        (
            lambda c: c["datasets"]["cityscapes"].update(experiments=["oracle_pcaa", "pcaa"]),
            "datasets.cityscapes.experiments: the cityscapes layout runs fully supervised",
        ),
        (
            lambda c: c["datasets"]["ade20k"].pop("experiments"),  # all: weak ones included
            "datasets.ade20k.experiments: the ade20k layout runs fully supervised",
        ),
        (
            lambda c: c["datasets"]["voc"].pop("pseudo_labels"),
            "datasets.voc.pseudo_labels: needed by the weak experiment 'baseline'",
        ),
        (
            lambda c: c["datasets"]["ade20k"].update(experiments=["oracle_ccnet"]),
            "experiments.oracle_ccnet.seg_model: 'ccnet' is not a key of "
            "datasets.ade20k.seg.models",
        ),
        (
            lambda c: c["datasets"]["cityscapes"]["seg"]["infer"].pop("stride"),
            "datasets.cityscapes.seg.models.pcaa.infer: mode 'slide' needs crop_size and stride",
        ),
        (
            lambda c: c["datasets"]["synth"]["seg"]["models"]["pcaa"].update(
                infer={"crop_size": 64, "stride": 32}
            ),
            "datasets.synth.seg.models.pcaa.infer: mode 'slide' needs crop_size and stride, "
            "mode 'whole' takes neither",
        ),
    ],
)
def test_dataset_experiment_selection_checked(edit, message):
    config = copy.deepcopy(CONFIG)
    edit(config)
    jsonschema.validate(config, SCHEMA)  # the schema allows each edit; check_references does not
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        check_references(config)


def test_fully_supervised_datasets_need_no_weak_sections():
    config = copy.deepcopy(CONFIG)
    cityscapes = config["datasets"]["cityscapes"]
    assert not {"cam", "pseudo_labels", "affinity", "cam_methods", "cda"} & set(cityscapes)
    config["datasets"]["synth"]["experiments"] = ["oracle", "oracle_pcaa"]
    for key in ("cam", "cam_methods", "cda", "pseudo_labels", "affinity"):
        del config["datasets"]["synth"][key]
    jsonschema.validate(config, SCHEMA)
    check_references(config)


def test_seg_settings_merge_the_model_overrides():
    cityscapes = CONFIG["datasets"]["cityscapes"]
    train, ccnet = cityscapes["seg"]["train"], seg_settings(cityscapes, "ccnet", "train")
    assert ccnet == {**train, "crop_size": 769, "scale_range": [0.7, 2.0], "jitter": 0.0}
    assert seg_settings(cityscapes, "pcaa", "train") == train
    assert seg_settings(cityscapes, "ccnet", "infer") == {
        "mode": "slide",
        "crop_size": 769,
        "stride": 513,
        "scales": [1.0],
        "flip": False,
    }
    assert seg_settings(CONFIG["datasets"]["voc"], "pcaa", "train")["crop_size"] == 320


def test_a_real_dataset_refuses_random_weights_unless_allowed():
    from wsss.workflow.checks import check_scratch

    config = copy.deepcopy(CONFIG)
    check_scratch(config, "synth")  # the synthetic benchmark trains from scratch by design
    check_scratch(config, "voc")  # config.yaml names ImageNet weights for every VOC model
    config["datasets"]["voc"]["cam"]["model"]["pretrained"] = "none"
    with pytest.raises(ValueError, match=r"^datasets\.voc\.cam\.model\.pretrained is none: "):
        check_scratch(config, "voc")
    config["datasets"]["voc"]["allow_scratch"] = True
    check_scratch(config, "voc")


def test_train_defaults_merge_under_every_recipe_and_leave_the_input_alone():
    defaults = {"lr": 0.1, "batch_size": 8, "lr_mults": {"backbone": 1.0, "head": 10.0}}
    shared = {"train": {"batch_size": 4}}  # one YAML alias used by two recipes
    raw = {
        "experiments": {},
        "datasets": {
            "d": {
                "train_defaults": defaults,
                "cam": shared,
                "cam_methods": {"seam": shared, "eps": {"train": {"lr_mults": {"head": 1.0}}}},
                "affinity": {"irn": {"train": {}, "radius": 5}},
                "seg": {"models": {"m": {"train": {"lr": 0.5}}}, "train": {"steps": 3}},
            },
            "plain": {"seg": {"models": {}, "train": {"steps": 7}}},  # no train_defaults
        },
    }
    before = copy.deepcopy(raw)
    d = with_train_defaults(raw)["datasets"]["d"]
    assert raw == before
    assert d["cam"]["train"] == {"lr": 0.1, "batch_size": 4, "lr_mults": defaults["lr_mults"]}
    assert d["cam_methods"]["seam"]["train"] == d["cam"]["train"]
    # lr_mults is replaced whole, as a seg model's own keys replace seg.train's
    assert d["cam_methods"]["eps"]["train"] == {**defaults, "lr_mults": {"head": 1.0}}
    assert d["affinity"]["irn"] == {"train": defaults, "radius": 5}
    assert d["seg"]["train"] == {**defaults, "steps": 3}
    assert seg_settings(d, "m", "train") == {**defaults, "steps": 3, "lr": 0.5}
    assert with_train_defaults(raw)["datasets"]["plain"]["seg"]["train"] == {"steps": 7}


def test_train_defaults_keep_the_written_out_recipes():
    # the synth CAM and VOC IRN settings as config.yaml wrote them in full before train_defaults
    synth, voc = CONFIG["datasets"]["synth"], CONFIG["datasets"]["voc"]
    assert synth["cam"]["train"] == {
        "steps": 450, "batch_size": 16, "optimizer": "adamw", "lr": 0.001, "momentum": 0.9,
        "weight_decay": 0.0001, "poly_power": 0.9, "lr_mults": {"backbone": 1.0, "head": 1.0},
        "crop_size": 112, "scale_range": [0.8, 1.2], "jitter": 0.2, "num_workers": 0,
        "checkpoint_every": 200,
    }  # fmt: skip
    assert voc["affinity"]["irn"]["train"] == {
        "steps": 990, "batch_size": 32, "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
        "weight_decay": 0.0001, "poly_power": 0.9, "lr_mults": {"head": 1.0}, "crop_size": 512,
        "scale_range": [0.5, 1.5], "jitter": 0.0, "num_workers": 8, "checkpoint_every": 200,
    }  # fmt: skip
    assert CONFIG["datasets"]["coco"]["cam"]["train"] == voc["cam"]["train"]


def test_the_schema_checks_config_yaml_as_written_and_the_merge_completes_every_recipe():
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    jsonschema.validate(raw, SCHEMA)  # recipes' train sections list only their differences
    required = SCHEMA["$defs"]["train_required"]["required"]
    check_train_complete(with_train_defaults(raw), required)
    del raw["datasets"]["synth"]["train_defaults"]["jitter"]
    with pytest.raises(ValueError) as caught:
        check_train_complete(with_train_defaults(raw), required)
    assert str(caught.value) == (
        "datasets.synth.cam.train.jitter: missing (set it there or in "
        "datasets.synth.train_defaults)"
    )
