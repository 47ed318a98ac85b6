"""Process-level set-up done by rule scripts (never at import): logging, seeds, threads, device.

torch is imported only where it is used: a job that checks, evaluates or tabulates never loads it
(about 2 s of CPU at every such job's start).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "setup_logging",
    "seed_everything",
    "pick_device",
    "configure_threads",
    "one_line_errors",
    "start_job",
    "cudnn_benchmark",
]


def setup_logging(log_path: str | os.PathLike | None, level: int = logging.INFO) -> None:
    """Send library logs to ``log_path`` (when given) and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        handlers=handlers,
        force=True,
    )


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator for data loaders."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def configure_threads(threads: int) -> None:
    """Pin torch's intra-op threads to the job's cores (keeps results repeatable): now if the job
    has loaded torch, else through ``OMP_NUM_THREADS``, which torch reads when it loads."""
    threads = max(1, int(threads))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def pick_device(requested: str = "auto") -> torch.device:
    """Resolve ``"auto" | "cpu" | "cuda" | "cuda:N"``; ``cuda`` without a GPU is an error.

    Logs "using device <device> (<GPU name>)", which the experiment manifest reads back
    (:func:`wsss.stages.provenance.job_span`).
    """
    import torch

    if requested == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} requested but torch sees no CUDA device")
    name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    logging.getLogger(__name__).info("using device %s%s", device, name)
    return device


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Report user-caused errors (bad config value, missing or broken file) as one line.

    The full traceback still goes to the log file at DEBUG level; the process exits 1.
    """
    try:
        yield
    except (ValueError, FileNotFoundError, KeyError, ImportError, ChildProcessError) as exc:
        logging.getLogger("wsss").debug("traceback", exc_info=True)
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        one_line = " ".join(str(message).split())
        logging.getLogger("wsss").error("%s: %s", type(exc).__name__, one_line)
        raise SystemExit(1) from None


def start_job(log_path: str | os.PathLike | None, threads: int, seed: int | None = None) -> None:
    """What every rule script does first: logging to the rule's log, thread count, seeds.

    The first log record ("job started") dates the job for the experiment manifest.
    """
    setup_logging(log_path)
    logging.getLogger(__name__).info("job started (threads %d, seed %s)", threads, seed)
    configure_threads(threads)
    if seed is not None:
        seed_everything(seed)


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """Let cuDNN time its convolution algorithms and keep the fastest per input shape (worth it
    for fixed-size training crops, not for images of many sizes); the previous setting is
    restored on exit."""
    import torch

    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = bool(enabled) or before
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
