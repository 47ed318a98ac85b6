"""The training monitor: data-wait share and images/s from step timings, and its event file."""

from __future__ import annotations

import pytest
import torch

from wsss.training.monitor import TrainingMonitor, read_run_summary


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _steps(monitor, clock, timings):
    """``timings``: per step (seconds waiting for the batch, seconds computing)."""
    for wait, compute in timings:
        clock.now += wait
        ready = clock.now
        clock.now += compute
        monitor.step(ready, {"term": torch.tensor(2.0)})


def test_wait_share_and_throughput_by_hand(tmp_path):
    clock = _Clock()
    monitor = TrainingMonitor(tmp_path / "tb", images_per_step=4, clock=clock)
    # step 1 (start-up) is slow; then 1 s waiting + 3 s computing, and 0 s + 2 s
    _steps(monitor, clock, [(10.0, 5.0), (1.0, 3.0), (0.0, 2.0)])
    interval = monitor.log(3, loss=0.5, lr=0.1)
    assert interval["data_wait_share"] == pytest.approx(11 / 21)
    assert interval["images_per_s"] == pytest.approx(12 / 21)
    _steps(monitor, clock, [(2.0, 2.0)])
    summary = monitor.close(4, torch.device("cpu"))
    # the whole run without its first step: waits 1 + 0 + 2 of 4 + 2 + 4 seconds
    assert summary["data_wait_share"] == pytest.approx(3 / 10)
    assert summary["images_per_s"] == pytest.approx(12 / 10)
    assert summary["step_seconds"] == pytest.approx(10 / 3)
    assert read_run_summary(tmp_path / "tb") == pytest.approx(
        {"images_per_s": 12 / 10, "data_wait_share": 3 / 10, "step_seconds": 10 / 3}
    )


def test_a_resumed_run_replays_its_history(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history = [{"step": 2, "loss": 1.5, "lr": 0.1}, {"step": 4, "loss": 1.0, "lr": 0.05}]
    clock = _Clock()
    monitor = TrainingMonitor(tmp_path, images_per_step=2, history=history, clock=clock)
    _steps(monitor, clock, [(0.5, 0.5), (0.5, 0.5)])
    monitor.log(6, loss=0.75, lr=0.01)
    monitor.close(6, torch.device("cpu"))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss/total")] == [
        (2, 1.5),
        (4, 1.0),
        (6, 0.75),
    ]
    assert [e.value for e in events.Scalars("loss/term")] == [2.0]  # mean over the interval


def test_without_a_folder_nothing_is_written(tmp_path):
    clock = _Clock()
    monitor = TrainingMonitor(None, images_per_step=1, clock=clock)
    _steps(monitor, clock, [(1.0, 1.0)])
    assert monitor.close(1, torch.device("cpu"))["data_wait_share"] == pytest.approx(0.5)
    assert list(tmp_path.iterdir()) == []
