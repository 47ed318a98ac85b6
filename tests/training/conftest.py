"""A tiny regression task shared by the training-loop tests (test_loop, test_resume_kill)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from wsss.training.optim import build_optimizer


class Points(Dataset):
    """``n`` fixed random 3-vectors (seed 0)."""

    def __init__(self, n: int = 12) -> None:
        self.x = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.x[i]


def noisy(sample: np.ndarray, rng: np.random.Generator) -> dict:
    """The point plus N(0, 0.1) noise as ``x``, the sum of its clean coordinates as ``y``: a
    random augmentation, so the tests also cover the per-sample RNG on resume."""
    noise = rng.normal(scale=0.1, size=sample.shape).astype(np.float32)
    return {"x": torch.from_numpy(sample + noise), "y": torch.tensor(float(sample.sum()))}


def dropout_regressor() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A 3 → 8 → 1 MLP with dropout, initialised from seed 0, and its SGD optimizer (lr 0.05,
    momentum 0.9, weight decay 1e-4)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1))
    optimizer = build_optimizer(
        [{"params": model.parameters()}], name="sgd", lr=0.05, weight_decay=1e-4, momentum=0.9
    )
    return model, optimizer


def squared_error(net: torch.nn.Module, batch: dict) -> torch.Tensor:
    """Mean squared error of ``net(x)`` against ``y``."""
    return ((net(batch["x"]).squeeze(1) - batch["y"]) ** 2).mean()
