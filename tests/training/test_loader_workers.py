"""Loader processes change nothing: a sample's augmentation is a function of (seed, epoch,
index), so training with data loaded in worker processes ends with the same weights."""

from __future__ import annotations

import torch

from tests.training.conftest import Points, dropout_regressor, noisy, squared_error
from wsss.training.loop import SeededDataset, train_steps


def _train(tmp_path, num_workers: int) -> torch.nn.Module:
    model, optimizer = dropout_regressor()
    train_steps(
        model=model,
        dataset=SeededDataset(Points(), noisy, seed=5),
        loss_fn=squared_error,
        optimizer=optimizer,
        steps=7,  # across an epoch boundary (3 batches of 4 per epoch)
        batch_size=4,
        seed=5,
        device=torch.device("cpu"),
        poly_power=0.9,
        resume_path=tmp_path / f"{num_workers}.resume",
        fingerprint="f",
        checkpoint_every=100,
        num_workers=num_workers,
    )
    return model


def test_worker_processes_give_the_same_weights(tmp_path):
    serial, parallel = _train(tmp_path, 0), _train(tmp_path, 2)
    for p, q in zip(serial.parameters(), parallel.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
