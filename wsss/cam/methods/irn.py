"""IRN's CAM classifier (``cam_method: cam``): multi-label soft margin on GAP scores, plain crops
(Ahn, Cho & Kwak, CVPR 2019; algorithms.md §1.2)."""

from __future__ import annotations

from collections.abc import Mapping

from wsss.data.transforms import TrainTransform
from wsss.training.cam_steps import multilabel_step_loss


def step_loss(loss: Mapping | None):
    return multilabel_step_loss


def transform(train: Mapping, loss: Mapping | None) -> TrainTransform:
    return TrainTransform.from_mapping(train)
