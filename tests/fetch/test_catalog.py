"""The weights table and the config's pretrained values."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from torchvision.models import ResNet50_Weights

from wsss.fetch.catalog import WEIGHTS, imagenet_name, resolve_source
from wsss.fetch.pretrained import model_entries, pretrained_file
from wsss.workflow.checks import check_fetch_config

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())


def test_torchvision_url_and_digest_come_from_the_weight_enum():
    source = resolve_source("torchvision_resnet50")
    assert source.url == ResNet50_Weights.IMAGENET1K_V1.url
    assert source.digest == "sha256:" + source.url.rsplit("-", 1)[1].split(".")[0]
    assert resolve_source("openmmlab_resnet101_v1c").digest == "sha256:e67eebb6"
    assert resolve_source("csail_resnet101").digest is None  # none published
    mirror = resolve_source("csail_resnet101", {"url": "file:///mirror/r101.pth"})
    assert mirror.url == "file:///mirror/r101.pth" and mirror.via == "hub"


def test_real_recipes_name_weights_that_fit_their_backbones():
    for name in ("voc", "coco", "cityscapes", "ade20k"):
        for key, model in model_entries(CONFIG["datasets"][name], f"datasets.{name}"):
            assert model["pretrained"] in WEIGHTS, key
            assert imagenet_name(model["net"]["backbone"]) == model["pretrained"], key
    for key, model in model_entries(CONFIG["datasets"]["synth"], "datasets.synth"):
        assert model["pretrained"] == "none", key
    check_fetch_config(CONFIG)


def test_pretrained_values_resolve_to_files():
    backbone = {"name": "resnet", "depth": 50}
    assert pretrained_file("imagenet", backbone, "w") == "w/torchvision_resnet50.pth"
    assert pretrained_file("torchvision_resnet50", backbone, "w") == "w/torchvision_resnet50.pth"
    assert pretrained_file("/data/mine.pth", backbone, "w") == "/data/mine.pth"
    assert pretrained_file("none", backbone, "w") is None
    assert pretrained_file(None, backbone, "w") is None


@pytest.mark.parametrize(
    "value, message",
    [
        ("resnet50_imagenet", "is none of none, imagenet, a weights name"),
        ("torchvision_resnet101", "'torchvision_resnet101' weights are for"),
    ],
)
def test_wrong_pretrained_names_are_refused_with_the_key(value, message):
    config = copy.deepcopy(CONFIG)
    config["datasets"]["voc"]["seg"]["models"]["deeplab"]["pretrained"] = value
    with pytest.raises(ValueError, match=message) as err:
        check_fetch_config(config)
    assert str(err.value).startswith("datasets.voc.seg.models.deeplab.pretrained: ")


def test_unknown_source_override_is_refused():
    config = copy.deepcopy(CONFIG)
    config["weights"]["sources"]["resnet50"] = {"url": "file:///x"}
    with pytest.raises(ValueError, match="weights.sources.resnet50: not a name"):
        check_fetch_config(config)
