"""CPN (Zhang et al., ICCV 2021; algorithms.md §2.1): PCM + PRCM on each crop and its pair of
complementary patch masks (``loss["pairs"]``)."""

from __future__ import annotations

from collections.abc import Mapping

from wsss.cam.complementary import ComplementaryPairTransform
from wsss.data.transforms import TrainTransform
from wsss.training.cam_steps import cpn_step_loss


def step_loss(loss: Mapping):
    return cpn_step_loss


def transform(train: Mapping, loss: Mapping) -> ComplementaryPairTransform:
    pairs = loss["pairs"]
    return ComplementaryPairTransform(
        TrainTransform.from_mapping(train),
        strategy=pairs["strategy"],
        n_segments=pairs["n_segments"],
        compactness=pairs["compactness"],
        cell_sizes=pairs["cell_sizes"],
    )
