"""Typed stage settings: one check of a section, fields for the stages, and TrainSettings as
a mapping that is the train section itself."""

from __future__ import annotations

import pytest
import torch

from wsss.hashing import config_fingerprint
from wsss.settings import CamInferSettings, SegInferSettings, TrainSettings
from wsss.training.launch import run_stage

SECTION = {
    "steps": 450, "batch_size": 16, "optimizer": "adamw", "lr": 0.001, "momentum": 0.9,
    "weight_decay": 0.0001, "poly_power": 0.9, "lr_mults": {"backbone": 1.0, "head": 1.0},
    "crop_size": 112, "scale_range": [0.8, 1.2], "jitter": 0.2, "num_workers": 0,
    "checkpoint_every": 200, "threads": 1,
}  # fmt: skip


def test_settings_read_as_the_section_they_were_built_from():
    settings = TrainSettings.from_mapping(SECTION)
    assert (settings.steps, settings.lr_mults, settings.sync_bn) == (450, SECTION["lr_mults"], None)
    assert dict(settings) == SECTION and settings["crop_size"] == 112
    assert "sync_bn" not in settings  # not set: one process
    # the run fingerprints of resumable training hash the section: unchanged by the type
    assert config_fingerprint(dict(settings)) == config_fingerprint(SECTION)
    assert TrainSettings.parse(settings) is settings
    with_sync = TrainSettings.from_mapping({**settings, "sync_bn": True})
    assert with_sync.sync_bn is True and dict(with_sync) == {**SECTION, "sync_bn": True}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({**SECTION, "stpes": 3}, "train.stpes: unknown setting (allowed: ['steps', "),
        ({k: v for k, v in SECTION.items() if k != "threads"}, "train.threads: missing "),
    ],
)
def test_a_bad_section_fails_in_one_line_naming_the_key(section, message):
    with pytest.raises(ValueError) as caught:
        TrainSettings.from_mapping(section)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_settings_cross_to_the_training_processes_as_a_plain_mapping(monkeypatch):
    from wsss.training import launch as launch_module

    sent = []
    monkeypatch.setattr(launch_module, "launch", lambda fn, args, kwargs, **_: sent.append(kwargs))
    settings = TrainSettings.from_mapping(SECTION)
    run_stage(
        print,
        device=torch.device("cpu"),
        gpus=2,
        sync_bn=True,
        threads=2,
        log_path=None,
        train=settings,
    )
    assert sent == [{"train": {**SECTION, "sync_bn": True}}]
    assert TrainSettings.parse(sent[0]["train"]).sync_bn is True


def test_seg_inference_takes_a_window_exactly_when_it_slides():
    whole = SegInferSettings.from_mapping({"scales": [1.0], "flip": True})
    assert (whole.mode, whole.crop_size, whole.stride) == ("whole", None, None)
    slide = {"mode": "slide", "crop_size": 769, "stride": 513, "scales": [1.0], "flip": False}
    assert SegInferSettings.from_mapping(slide).stride == 513
    for bad in ({**slide, "stride": None}, {**slide, "mode": "whole"}):
        with pytest.raises(ValueError, match="^infer: mode 'slide' needs crop_size and stride"):
            SegInferSettings.from_mapping({k: v for k, v in bad.items() if v is not None})
    with pytest.raises(ValueError, match=r"^infer\.mode: 'tile' is none of \['whole', 'slide'\]"):
        SegInferSettings.from_mapping({**slide, "mode": "tile"})


def test_cam_inference_settings_name_a_bad_key():
    infer = {"scales": [1.0, 0.5], "flip": True, "normalization": "minmax", "procedure": "irn"}
    assert CamInferSettings.from_mapping(infer).normalization == "minmax"
    with pytest.raises(ValueError, match=r"^infer\.normalization: missing "):
        CamInferSettings.from_mapping({"scales": [1.0], "flip": True})  # the schema fills it
    with pytest.raises(ValueError, match=r"^infer\.procedure: 'pil' is none of "):
        CamInferSettings.from_mapping({**infer, "procedure": "pil"})
    with pytest.raises(ValueError, match=r"^infer\.normalization: 'l2' is none of "):
        CamInferSettings.from_mapping({**infer, "normalization": "l2"})
