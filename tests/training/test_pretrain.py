"""pretrain_backbone: weights that load strictly into the recipe's backbone; resume after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from wsss.data.shape_corpus import write_corpus
from wsss.io import load_checkpoint
from wsss.models.backbones import backbone_from_config, load_pretrained
from wsss.stages.pretrain import run_pretrain_backbone
from wsss.training import pretrain

# a recipe's backbone: dilated OS 8, frozen BN (as the papers fine-tune)
RECIPE = {"name": "resnet", "depth": 10, "output_stride": 8, "base_width": 8, "frozen_bn": True}
TRAIN = {
    "steps": 4,
    "batch_size": 4,
    "optimizer": "sgd",
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 0.0001,
    "poly_power": 0.9,
    "lr_mults": {"backbone": 1.0, "head": 1.0},
    "checkpoint_every": 2,
    "num_workers": 0,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.npz"
    write_corpus(path, seed=0, num_classes=3, images_per_class=5, image_size=32)
    return path


def _run(corpus: Path, out: Path) -> None:
    run_pretrain_backbone(
        corpus,
        out / "w.pth",
        out / "loss.csv",
        out / "w.json",
        backbone=RECIPE,
        train=TRAIN,
        seed=0,
        device=torch.device("cpu"),
        holdout=0.2,
    )


def test_weights_load_strictly_into_the_recipe_backbone(corpus: Path, tmp_path: Path) -> None:
    _run(corpus, tmp_path)
    state = load_checkpoint(tmp_path / "w.pth")
    assert state["fc.weight"].shape == (3, 64)  # torchvision layout: 3 classes on 8·8 channels
    recipe = backbone_from_config(RECIPE)
    load_pretrained(recipe, tmp_path / "w.pth")
    for key, value in recipe.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    assert any((state[k] != v).any() for k, v in backbone_from_config(RECIPE).state_dict().items()
               if v.is_floating_point())  # fmt: skip
    manifest = json.loads((tmp_path / "w.json").read_text())
    assert manifest["train_images"] == 12 and manifest["heldout_images"] == 3  # round(0.2·5) = 1
    assert not (tmp_path / "w.pth.resume").exists()


def test_a_killed_run_resumes_to_the_same_weights(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(corpus, tmp_path / "whole")
    calls = {"n": 0}
    original = pretrain.CorpusSamples.__getitem__

    def dying(self, i):
        calls["n"] += 1
        if calls["n"] > 3 * TRAIN["batch_size"]:  # dies in step 4, after the step-2 checkpoint
            raise KeyboardInterrupt
        return original(self, i)

    monkeypatch.setattr(pretrain.CorpusSamples, "__getitem__", dying)
    with pytest.raises(KeyboardInterrupt):
        _run(corpus, tmp_path / "killed")
    assert (tmp_path / "killed" / "w.pth.resume").exists()
    assert not (tmp_path / "killed" / "w.pth").exists()
    fetched = {"n": 0}

    def counting(self, i):
        fetched["n"] += 1
        return original(self, i)

    monkeypatch.setattr(pretrain.CorpusSamples, "__getitem__", counting)
    _run(corpus, tmp_path / "killed")
    assert fetched["n"] == 2 * TRAIN["batch_size"]  # steps 3 and 4 only: resumed at step 2
    whole = load_checkpoint(tmp_path / "whole" / "w.pth")
    resumed = load_checkpoint(tmp_path / "killed" / "w.pth")
    assert whole.keys() == resumed.keys()
    for key in whole:
        torch.testing.assert_close(resumed[key], whole[key], rtol=0, atol=0)


def test_only_resnet_backbones() -> None:
    with pytest.raises(ValueError, match="pretrain_backbone trains resnet backbones only"):
        pretrain.pretraining_backbone({"name": "resnet38"})


def test_every_synth_voc_recipe_accepts_its_stand_in_weights() -> None:
    """Each model of config.yaml's synth_voc that names a stand-in file gets, from the backbone
    entry that writes it, a state dict its own backbone (stride, dilation, BN as the recipe)
    accepts key for key."""
    import yaml

    from tests.workflow.conftest import REPO
    from wsss.fetch.pretrained import model_entries
    from wsss.models.backbones import check_state_dict

    spec = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]["synth_voc"]
    backbones = spec["pretrain"]["backbones"]
    checked = 0
    for key, model in model_entries(spec, "datasets.synth_voc"):
        name = Path(model["pretrained"]).stem
        weights = pretrain.BackboneClassifier(backbones[name], num_classes=5).weights()
        check_state_dict(backbone_from_config(model["net"]["backbone"]), weights, key)
        checked += 1
    assert checked == 9  # cam, seam, cpn, eps, irn, affinitynet, deeplab, ccnet, pcaa
