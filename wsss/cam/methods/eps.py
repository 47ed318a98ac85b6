"""EPS (Lee et al., CVPR 2021; algorithms.md §1.2(d)): fg + bg head, classification plus the
saliency loss (``loss["tau"]``, ``loss["lam"]``); crops carry their saliency map along."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from wsss.data.transforms import MapsTransform
from wsss.training.cam_steps import eps_step_loss


def step_loss(loss: Mapping):
    return partial(eps_step_loss, tau=float(loss["tau"]), lam=float(loss["lam"]))


def transform(train: Mapping, loss: Mapping) -> MapsTransform:
    return MapsTransform.from_mapping(["saliency"], train)
