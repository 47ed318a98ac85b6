"""SEAM (Wang et al., CVPR 2020; algorithms.md §1.2(c)): each crop and a copy downscaled by
``loss["view_scale"]``, PCM, equivariant regularisation; plain crops."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from wsss.data.transforms import TrainTransform
from wsss.training.cam_steps import seam_step_loss


def step_loss(loss: Mapping):
    return partial(seam_step_loss, view_scale=float(loss["view_scale"]))


def transform(train: Mapping, loss: Mapping) -> TrainTransform:
    return TrainTransform.from_mapping(train)
