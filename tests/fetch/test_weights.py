"""ImageNet weights in their publishers' formats → wsss names: each converted file loads strictly
into the wsss backbone and holds the source tensors; fetch_weights over a local HTTP server."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
import torch
import torchvision

from tests.fetch.test_mxnet import ndarray_list
from wsss.fetch.catalog import WEIGHTS, imagenet_name
from wsss.fetch.convert import convert_weights
from wsss.fetch.weights import fetch_weights
from wsss.models.backbones import load_pretrained
from wsss.models.resnet import ResNet
from wsss.models.resnet38 import ResNet38


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _labelled(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor of ``model``'s state dict filled with its own index (float16: exact up to
    2048), so a key mapped to the wrong place shows up; shapes only, no real weights."""
    return {
        k: torch.full(v.shape, float(i % 2000), dtype=torch.float16)
        for i, (k, v) in enumerate(model.state_dict().items())
        if not k.endswith("num_batches_tracked")
    }


def _load_on_meta(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """A real strict load without memory: the meta model takes the tensors themselves."""
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    assert [k for k in missing if not k.endswith("num_batches_tracked")] == [] and not unexpected


def test_torchvision_weights_fetched_over_http_load_strictly(tmp_path, server):
    source = torchvision.models.resnet50(weights=None).state_dict()
    body = _saved(source)
    server.files["/resnet50-x.pth"] = body
    prefix = hashlib.sha256(body).hexdigest()[:8]
    out = tmp_path / "weights" / "torchvision_resnet50.pth"
    overrides = {"url": server.url("/resnet50-x.pth"), "digest": f"sha256:{prefix}"}
    fetch_weights("torchvision_resnet50", out, overrides=overrides)
    model = ResNet(50)
    load_pretrained(model, out)
    own = model.state_dict()
    for key, value in source.items():
        if not key.startswith("fc."):
            assert torch.equal(own[key], value), key
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    leftovers = sorted(p.name for p in out.parent.iterdir())
    assert leftovers == sorted(
        [out.name, out.with_suffix(".json").name]
    )  # no original, no .partial


def test_openmmlab_v1c_stem_is_renamed(tmp_path):
    with torch.device("meta"):
        target = ResNet(50, deep_stem=True)
    wsss_to_mmcv = {
        "conv1.0": "stem.0",
        "conv1.1": "stem.1",
        "conv1.3": "stem.3",
        "conv1.4": "stem.4",
        "conv1.6": "stem.6",
        "bn1": "stem.7",
    }
    ours = _labelled(target)
    theirs = {}
    for key, value in ours.items():
        module, _, param = key.rpartition(".")
        theirs[f"{wsss_to_mmcv.get(module, module)}.{param}"] = value
    theirs["fc.weight"] = torch.zeros(1000, 2048, dtype=torch.float16)
    path = tmp_path / "resnet50_v1c.pth"
    path.write_bytes(_saved({"meta": {"epoch": 120}, "state_dict": theirs}))
    state = convert_weights("mmcv_v1c", path, WEIGHTS["openmmlab_resnet50_v1c"].backbone)
    assert state.keys() == ours.keys()
    for key, value in ours.items():
        assert torch.equal(state[key], value), key
    model = ResNet(50, deep_stem=True)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    assert torch.equal(model.conv1[6].weight, ours["conv1.6.weight"].float())
    assert torch.equal(model.bn1.running_var, ours["bn1.running_var"].float())


def test_csail_deep_stem_resnet101_fits_the_ccnet_backbone(tmp_path):
    backbone = {"name": "resnet", "depth": 101, "deep_stem": True, "stem_width": 128}
    assert imagenet_name(backbone) == "csail_resnet101"
    with torch.device("meta"):
        target = ResNet(101, deep_stem=True, stem_width=128, output_stride=8, stem_pool_ceil=True)
    ours = _labelled(target)
    csail = {
        "conv1.0": "conv1",
        "conv1.1": "bn1",
        "conv1.3": "conv2",
        "conv1.4": "bn2",
        "conv1.6": "conv3",
        "bn1": "bn3",
    }
    theirs = {}
    for key, value in ours.items():
        module, _, param = key.rpartition(".")
        theirs[f"{csail.get(module, module)}.{param}"] = value
    assert theirs["conv1.weight"].shape == (64, 3, 3, 3)  # CCNet's stem: 64, 64, 128
    assert theirs["conv3.weight"].shape == (128, 64, 3, 3)
    assert theirs["layer1.0.conv1.weight"].shape == (64, 128, 1, 1)
    path = tmp_path / "resnet101-imagenet.pth"
    path.write_bytes(_saved({f"module.{k}": v for k, v in theirs.items()}))
    state = convert_weights("csail_deep_stem", path, backbone)
    with torch.device("meta"):
        model = ResNet(101, deep_stem=True, stem_width=128)
    _load_on_meta(model, state)
    for key, value in ours.items():
        assert torch.equal(state[key], value), key
    del theirs["layer4.2.bn3.running_mean"]
    path.write_bytes(_saved(theirs))
    with pytest.raises(ValueError, match=r"missing keys \['layer4.2.bn3.running_mean'\]"):
        convert_weights("csail_deep_stem", path, backbone)


def _mxnet_name(key: str) -> str:
    """The MXNet ResNet-38 name of a wsss ResNet38 key (written out independently of the
    converter: res/bn<stage><a | b<n>>_branch<…>, arg: for parameters, aux: for statistics)."""
    module, _, param = key.rpartition(".")
    if key == "conv1a.weight":
        return "arg:conv1a_weight"
    mx_param = {
        "weight": "gamma",
        "bias": "beta",
        "running_mean": "moving_mean",
        "running_var": "moving_var",
    }
    prefix = "aux" if param.startswith("running") else "arg"
    if module == "bn7":
        return f"{prefix}:bn7_{mx_param[param]}"
    block, layer = module.split(".")
    stage, _, number = block[1:].partition("_")
    unit = f"{stage}a" if not number else f"{stage}b{number}"
    kind, branch = layer.split("_", 1)
    if kind == "conv":
        return f"arg:res{unit}_{branch}_weight"
    return f"{prefix}:bn{unit}_{branch}_{mx_param[param]}"


@pytest.fixture
def resnet38_source():
    model = ResNet38(width=0.25)
    rng = np.random.default_rng(0)
    return {
        k: rng.standard_normal(tuple(v.shape)).astype(np.float32)
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def test_mxnet_resnet38_params_load_strictly(tmp_path, resnet38_source):
    named = {_mxnet_name(k): v for k, v in resnet38_source.items()}
    assert "arg:res2b1_branch2a_weight" in named and "aux:bn4b5_branch2b1_moving_var" in named
    named["arg:linear1000_weight"] = np.zeros((1000, 16), np.float32)
    path = tmp_path / "downloaded"  # no suffix: recognised by its header
    path.write_bytes(ndarray_list(named))
    state = convert_weights("resnet38", path, {"name": "resnet38", "width": 0.25})
    model = ResNet38(width=0.25)
    model.load_state_dict(state, strict=False)
    own = model.state_dict()
    for key, value in resnet38_source.items():
        np.testing.assert_array_equal(own[key].numpy(), value, err_msg=key)


def test_pth_conversion_of_resnet38_is_accepted(tmp_path, resnet38_source):
    state = {f"module.{k}": torch.from_numpy(v) for k, v in resnet38_source.items()}
    state["module.fc8.weight"] = torch.zeros(20, 1024, 1, 1)
    path = tmp_path / "res38d.pth"
    path.write_bytes(_saved(state))
    out = convert_weights("resnet38", path, {"name": "resnet38", "width": 0.25})
    assert out.keys() == resnet38_source.keys()
    path.write_bytes(_saved({k: v for k, v in state.items() if "b7." not in k}))
    with pytest.raises(ValueError, match="missing keys"):
        convert_weights("resnet38", path, {"name": "resnet38", "width": 0.25})


def test_full_size_resnet38_names_fit_the_table_entry(tmp_path):
    """The width-1 key set, as the MXNet file names it, passes the strict check of the
    table's backbone (meta tensors: names and shapes only)."""
    with torch.device("meta"):
        model = ResNet38(width=1.0)
    shapes = {
        _mxnet_name(k): tuple(v.shape)
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    assert len(shapes) == len(set(shapes))
    from wsss.fetch.convert import mxnet_resnet38_names
    from wsss.models.backbones import check_state_dict

    arrays = {
        name: np.lib.stride_tricks.as_strided(np.zeros(1, np.float16), shape, [0] * len(shape))
        for name, shape in shapes.items()
    }
    state = mxnet_resnet38_names(arrays, "full")
    check_state_dict(model, state, "full")
    assert WEIGHTS["resnet38_ilsvrc"].backbone == {"name": "resnet38", "width": 1.0}
