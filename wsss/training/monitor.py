"""What a training run costs while it runs: images/s, the share of step time spent waiting for
data, loss terms and learning rate, into the job log and a TensorBoard event file.

The event file (``tensorboard --logdir results/<dataset>``) is written live, so a cluster run
can be watched; :func:`read_run_summary` reads its whole-run figures back for the cost table.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

__all__ = ["TrainingMonitor", "RUN_TAGS", "read_run_summary"]

log = logging.getLogger(__name__)

# whole-run scalars written once at the end (read back by read_run_summary)
RUN_TAGS = {
    "run/images_per_s": "images_per_s",
    "run/data_wait_share": "data_wait_share",
    "run/step_seconds": "step_seconds",
    "run/peak_gpu_mib": "peak_gpu_mib",
}


class _Window:
    """Sums over a span of steps: seconds waiting for data, seconds in all, steps, images."""

    def __init__(self) -> None:
        self.wait = self.total = 0.0
        self.steps = self.images = 0

    def add(self, wait: float, total: float, images: int) -> None:
        self.wait += wait
        self.total += total
        self.steps += 1
        self.images += images

    @property
    def images_per_s(self) -> float:
        return self.images / self.total if self.total > 0 else math.nan

    @property
    def wait_share(self) -> float:
        return self.wait / self.total if self.total > 0 else math.nan


class TrainingMonitor:
    """Timing, loss terms and TensorBoard scalars of one training run (rank 0 passes
    ``log_dir``; other ranks pass None and only time their steps).

    Per step the loop reports how long it waited for the batch (the loader plus the copy to the
    device) and how long the whole step took, from the end of the previous step; every log
    interval :meth:`log` writes ``loss/total`` (the logged loss), ``loss/<term>`` (this rank's
    means of the other terms the loss function returned), ``lr``, ``perf/images_per_s`` and
    ``perf/data_wait_share``. :meth:`close` writes the whole-run figures (:data:`RUN_TAGS`),
    leaving out the first step after each start (worker start-up, cuDNN autotuning).

    Args:
        log_dir: the event file's folder, or None for no event file.
        images_per_step: the global batch size.
        history: the logged steps of a resumed run (``{"step", "loss", "lr"}``), replayed into
            the event file so it covers the whole run.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike | None,
        *,
        images_per_step: int,
        history: Sequence[Mapping] = (),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.images_per_step, self.clock = int(images_per_step), clock
        self.writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            Path(log_dir).mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(os.fspath(log_dir))
            for row in history:
                self.writer.add_scalar("loss/total", row["loss"], row["step"])
                self.writer.add_scalar("lr", row["lr"], row["step"])
        self.interval, self.run = _Window(), _Window()
        self.terms: dict[str, torch.Tensor] = {}
        self.term_steps = 0
        self.first = True
        self.last = clock()

    def step(self, batch_ready: float, terms: Mapping[str, torch.Tensor] | None = None) -> None:
        """Close one step: ``batch_ready`` is the clock when its batch was on the device;
        ``terms`` the loss terms besides ``"loss"`` (detached; summed on the device, read at
        the next :meth:`log`)."""
        now = self.clock()
        wait, total = batch_ready - self.last, now - self.last
        self.last = now
        self.interval.add(wait, total, self.images_per_step)
        if not self.first:
            self.run.add(wait, total, self.images_per_step)
        self.first = False
        for name, value in (terms or {}).items():
            value = value.detach().float()
            self.terms[name] = value if name not in self.terms else self.terms[name] + value
        self.term_steps += 1

    def log(self, step: int, loss: float, lr: float) -> dict[str, float]:
        """Write the interval's scalars at ``step``; return its images/s and data-wait share."""
        figures = {
            "images_per_s": self.interval.images_per_s,
            "data_wait_share": self.interval.wait_share,
        }
        if self.writer is not None:
            self.writer.add_scalar("loss/total", loss, step)
            for name, value in self.terms.items():
                self.writer.add_scalar(f"loss/{name}", value.item() / self.term_steps, step)
            self.writer.add_scalar("lr", lr, step)
            self.writer.add_scalar("perf/images_per_s", figures["images_per_s"], step)
            self.writer.add_scalar("perf/data_wait_share", figures["data_wait_share"], step)
        self.interval, self.terms, self.term_steps = _Window(), {}, 0
        return figures

    def close(self, step: int, device: torch.device) -> dict[str, float]:
        """Log and write the whole-run figures (:data:`RUN_TAGS`) at ``step``; return them."""
        run = self.run if self.run.steps else self.interval
        summary = {
            "images_per_s": run.images_per_s,
            "data_wait_share": run.wait_share,
            "step_seconds": run.total / run.steps if run.steps else math.nan,
        }
        if device.type == "cuda":
            summary["peak_gpu_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        log.info(
            "training: %.2f images/s, %.1f %% of the step time waiting for data (%d steps)",
            summary["images_per_s"],
            100 * summary["data_wait_share"],
            run.steps,
        )
        if self.writer is not None:
            tags = {key: tag for tag, key in RUN_TAGS.items()}
            for key, value in summary.items():
                self.writer.add_scalar(tags[key], value, step)
            self.writer.close()
        return summary


def read_run_summary(log_dir: str | os.PathLike) -> dict[str, float]:
    """The whole-run figures a :class:`TrainingMonitor` wrote into ``log_dir`` (the keys of
    :data:`RUN_TAGS` it found; the last value of each)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.fspath(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    found = set(events.Tags()["scalars"])
    return {key: events.Scalars(tag)[-1].value for tag, key in RUN_TAGS.items() if tag in found}


def tensorboard_folder(model_path: str | os.PathLike) -> Path:
    """Where a training stage whose model is ``results/<dataset>/<run>/<stage>/model.pt`` writes
    its event file: ``results/<dataset>/tensorboard/<run>/<stage>`` (outside the run folder, so
    the run's files and archive stay as they were; ``tensorboard --logdir results/<dataset>``)."""
    model = Path(model_path)
    stage, run, results = model.parent, model.parent.parent, model.parent.parent.parent
    return results / "tensorboard" / run.name / stage.name
