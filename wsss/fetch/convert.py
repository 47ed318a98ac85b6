"""ImageNet weight files in their publishers' formats → state dicts in ``wsss.models`` names.

- ``torchvision``: torchvision's ResNet files already use :class:`wsss.models.resnet.ResNet`
  names (``fc`` is dropped).
- ``mmcv_v1c``: open-mmlab's ResNet-v1c (mmcv ``ResNetV1c``): the deep stem
  ``stem.{0,1,3,4,6,7}`` (conv, BN, conv, BN, conv, BN) becomes ``conv1.{0,1,3,4,6}`` + ``bn1``.
- ``csail_deep_stem``: MIT CSAIL's deep-stem ResNet (the ``resnet101-imagenet.pth`` CCNet
  starts from): ``conv1/bn1/conv2/bn2/conv3/bn3`` become ``conv1.{0,1,3,4,6}`` + ``bn1``.
- ``resnet38``: the MXNet ImageNet ResNet-38 (``ilsvrc-cls_rna-a1_cls1000_ep-0001.params``, read
  by :mod:`wsss.fetch.mxnet`) or a ``.pth`` conversion of it in PSA's names (those of
  :class:`wsss.models.resnet38.ResNet38`).

Every converter returns a flat ``{name: tensor}``; :func:`convert_weights` then checks it
against the target backbone with :func:`wsss.models.backbones.check_state_dict`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from wsss.fetch.mxnet import is_ndarray_list, read_ndarray_list
from wsss.models.backbones import backbone_from_config, check_state_dict

__all__ = [
    "CONVERTERS",
    "convert_weights",
    "csail_deep_stem",
    "load_torch_state",
    "mmcv_v1c",
    "mxnet_resnet38_names",
    "resnet38",
    "torchvision_resnet",
]

_BN_MX = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
          "moving_var": "running_var"}  # fmt: skip


def load_torch_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A ``.pth`` state dict without pickles; unwraps ``{"state_dict": …}`` / ``{"model": …}``
    and strips a ``module.`` prefix (checkpoints saved from DataParallel).

    Raises:
        ValueError: naming the file when it holds no dict of tensors.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip or pickle errors of a damaged or foreign file
        raise ValueError(f"{path} is not a readable PyTorch weights file: {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _drop_classifier(state: Mapping[str, torch.Tensor], *prefixes: str) -> dict:
    return {k: v for k, v in state.items() if not k.startswith(prefixes)}


def torchvision_resnet(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    return _drop_classifier(load_torch_state(path), "fc.")


def _rename_stem(state: Mapping[str, torch.Tensor], stem: Mapping[str, str]) -> dict:
    out = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        out[f"{stem[module]}.{param}" if module in stem else key] = value
    return out


def mmcv_v1c(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    stem = {"stem.0": "conv1.0", "stem.1": "conv1.1", "stem.3": "conv1.3", "stem.4": "conv1.4",
            "stem.6": "conv1.6", "stem.7": "bn1"}  # fmt: skip
    return _rename_stem(_drop_classifier(load_torch_state(path), "fc."), stem)


def csail_deep_stem(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    stem = {"conv1": "conv1.0", "bn1": "conv1.1", "conv2": "conv1.3", "bn2": "conv1.4",
            "conv3": "conv1.6", "bn3": "bn1"}  # fmt: skip
    return _rename_stem(_drop_classifier(load_torch_state(path), "fc."), stem)


_MX_BLOCK = re.compile(
    r"^(res|bn)(\d)([a-z])(\d*)_(branch\w+?)_(weight|gamma|beta|moving_mean|moving_var)$"
)


def mxnet_resnet38_names(arrays: Mapping[str, np.ndarray], source: str) -> dict[str, torch.Tensor]:
    """Rename the MXNet ResNet-38 arrays to :class:`~wsss.models.resnet38.ResNet38` names.

    ``res<S><L><n>_branch<B>_weight`` → ``b<S>[_<n>].conv_branch<B>.weight`` (``L`` = ``a``: the
    stage's first block ``b<S>``; ``b<n>``: ``b<S>_<n>``), ``bn<S><L><n>_branch<B>_<p>`` →
    ``….bn_branch<B>.<p>`` (gamma → weight, beta → bias, moving_mean/var → running_mean/var),
    ``bn7_<p>`` → ``bn7.<p>``, ``conv1a_weight`` → ``conv1a.weight``; the ImageNet classifier
    ``linear1000`` is dropped. The ``arg:``/``aux:`` prefixes of saved modules are removed.

    Raises:
        ValueError: naming the file and the first names that fit none of these patterns.
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for raw, array in arrays.items():
        name = raw.split(":", 1)[1] if raw.startswith(("arg:", "aux:")) else raw
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if name.startswith("linear1000_"):
            continue
        if name == "conv1a_weight":
            out["conv1a.weight"] = tensor
            continue
        if name.startswith("bn7_") and name[4:] in _BN_MX:
            out[f"bn7.{_BN_MX[name[4:]]}"] = tensor
            continue
        match = _MX_BLOCK.match(name)
        if match is None:
            unknown.append(raw)
            continue
        kind, stage, letter, number, branch, param = match.groups()
        if (letter == "a") == bool(number):
            unknown.append(raw)
            continue
        block = f"b{stage}" if letter == "a" else f"b{stage}_{number}"
        if kind == "res" and param == "weight":
            out[f"{block}.conv_{branch}.weight"] = tensor
        elif kind == "bn" and param in _BN_MX:
            out[f"{block}.bn_{branch}.{_BN_MX[param]}"] = tensor
        else:
            unknown.append(raw)
    if unknown:
        raise ValueError(f"{source}: not ResNet-38 ImageNet arrays: {sorted(unknown)[:5]}")
    return out


def resnet38(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The MXNet ``.params`` file (recognised by its header, whatever its name) or a ``.pth``
    conversion in PSA's names (its ``fc8``/``linear1000`` classifier dropped)."""
    if is_ndarray_list(path):
        return mxnet_resnet38_names(read_ndarray_list(path), str(path))
    return _drop_classifier(load_torch_state(path), "fc8.", "linear1000.", "fc.")


CONVERTERS: dict[str, Callable[[str | os.PathLike], dict[str, torch.Tensor]]] = {
    "torchvision": torchvision_resnet,
    "mmcv_v1c": mmcv_v1c,
    "csail_deep_stem": csail_deep_stem,
    "resnet38": resnet38,
}


def convert_weights(
    converter: str, source: str | os.PathLike, backbone: Mapping
) -> dict[str, torch.Tensor]:
    """Convert ``source`` with ``CONVERTERS[converter]`` and check it strictly against the
    backbone built from ``backbone`` (on the meta device: no memory, only names and shapes).

    Raises:
        KeyError: for an unknown converter name.
        ValueError: naming the file and the keys that do not fit.
    """
    if converter not in CONVERTERS:
        raise KeyError(f"unknown weights converter {converter!r}; valid: {sorted(CONVERTERS)}")
    state = CONVERTERS[converter](source)
    with torch.device("meta"):
        model = backbone_from_config(dict(backbone))
    state = check_state_dict(model, state, Path(source))
    return {k: v.contiguous() for k, v in state.items()}
