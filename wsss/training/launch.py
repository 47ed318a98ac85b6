"""Start a training world from a rule script, the way ``torchrun --standalone`` does.

:func:`launch` runs PyTorch's elastic launcher (what the ``torchrun`` command runs) inside the
calling process: one worker per GPU, a local rendezvous on a free port, no restarts. Each
worker is a fresh interpreter (``python -m wsss.training.launch <spec>``), so nothing is
forked or pickled and a Snakemake ``script:`` needs no ``__main__`` guard.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from wsss.training.distributed import destroy_process_group, init_process_group

__all__ = ["launch", "run_stage"]

log = logging.getLogger(__name__)

_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"


def _encode(value: object) -> str:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot pass a {type(value).__name__} to a training process: {value!r}")


def launch(
    fn: Callable,
    args: Sequence = (),
    kwargs: Mapping | None = None,
    *,
    nprocs: int,
    device: torch.device,
    log_path: str | os.PathLike | None = None,
    threads: int = 1,
    seed: int | None = None,
) -> None:
    """Run ``fn(*args, device=<rank device>, **kwargs)`` in ``nprocs`` processes, as
    ``torchrun --standalone --nproc-per-node nprocs`` would: PyTorch's elastic launcher with a
    local rendezvous on a free port and no restarts. Each worker is a fresh interpreter
    (``python -m wsss.training.launch``), so nothing is forked or pickled.

    ``fn`` must be a module-level function; ``args``/``kwargs`` JSON values (paths allowed).
    The ranks append to ``log_path`` (rank 0 everything, the others warnings and errors);
    ``threads`` are shared out over the ranks.

    Raises:
        RuntimeError: a training process failed (its error is in the log).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    target = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in target or fn.__module__ == "__main__":
        raise ValueError(f"launch needs an importable module-level function, not {target}")
    spec = {
        "target": target,
        "args": list(args),
        "kwargs": dict(kwargs or {}),
        "device": device.type,
        "log_path": None if log_path is None else os.fspath(log_path),
        "threads": max(1, int(threads) // nprocs),
        "seed": seed,
    }
    _reopen_log_files_for_append()
    with tempfile.TemporaryDirectory(prefix="wsss-launch-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec, default=_encode))
        config = LaunchConfig(
            min_nodes=1,
            max_nodes=1,
            nproc_per_node=nprocs,
            run_id=f"wsss-{os.getpid()}-{Path(tmp).name}",
            rdzv_backend="c10d",
            rdzv_endpoint="localhost:0",  # torchrun --standalone: the store picks a free port
            max_restarts=0,
        )
        log.info("launching %d %s training processes for %s", nprocs, device.type, target)
        try:
            elastic_launch(config, sys.executable)("-m", __name__, os.fspath(spec_file))
        except ChildFailedError as error:
            failed_rank, failure = error.get_first_failure()
            raise RuntimeError(
                f"training process {failed_rank} of {nprocs} failed "
                f"(exit code {failure.exitcode}); see its log above"
            ) from None


def _reopen_log_files_for_append() -> None:
    """Workers append to the job's log: switch this process's log files to append mode too,
    or its next record would overwrite theirs."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and handler.mode != "a":
            fresh = logging.FileHandler(handler.baseFilename, mode="a")
            fresh.setFormatter(handler.formatter)
            fresh.setLevel(handler.level)
            root.removeHandler(handler)
            handler.close()
            root.addHandler(fresh)


def run_stage(
    fn: Callable,
    *args: object,
    device: torch.device,
    gpus: int | None,
    sync_bn: bool,
    threads: int,
    log_path: str | os.PathLike | None,
    **kwargs,
) -> None:
    """Call a training stage ``fn(*args, device=device, **kwargs)`` from a rule script: in this
    process, or, when ``gpus`` (the rule's ``resources.gpu``; None = 0) is above 1, in one
    process per GPU (:func:`launch`), which then get ``sync_bn`` (the config's
    ``distributed.sync_bn``) as ``train["sync_bn"]``, share out ``threads`` and append to
    ``log_path``.
    """
    gpus = int(gpus or 0)
    if gpus <= 1:
        fn(*args, device=device, **kwargs)
        return
    if device.type == "cuda" and torch.cuda.device_count() < gpus:
        raise ValueError(
            f"resources gpu={gpus} but torch sees {torch.cuda.device_count()} CUDA device(s)"
        )
    if device.type == "cpu":
        log.warning("resources gpu=%d on a CPU device: %d gloo processes on CPU", gpus, gpus)
    if "train" not in kwargs:
        raise ValueError(f"{fn.__qualname__} takes no train settings: cannot pass sync_bn")
    kwargs["train"] = {**kwargs["train"], "sync_bn": bool(sync_bn)}
    try:
        launch(
            fn,
            args,
            kwargs,
            nprocs=gpus,
            device=device,
            log_path=log_path,
            threads=threads,
            seed=kwargs.get("seed"),
        )
    except RuntimeError as error:  # the worker logged its own error: one line here
        log.error("%s", error)
        raise SystemExit(1) from None


def _worker(spec_file: str) -> None:
    """One rank: logging into the job's log (rank 0 all, others warnings and errors), threads,
    seeds, process group, then the call."""
    from wsss.utils.runtime import configure_threads, one_line_errors, seed_everything

    spec = json.loads(Path(spec_file).read_text())
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if spec["log_path"]:  # O_APPEND: the ranks' lines interleave, none overwrites another
        handlers.append(logging.FileHandler(spec["log_path"], mode="a"))
    level = logging.INFO if os.environ.get("RANK") == "0" else logging.WARNING
    logging.basicConfig(level=level, format=_FORMAT, handlers=handlers, force=True)
    configure_threads(spec["threads"])
    if spec["seed"] is not None:
        seed_everything(spec["seed"])
    module, _, qualname = spec["target"].partition(":")
    with one_line_errors():
        try:
            fn = importlib.import_module(module)
            for part in qualname.split("."):
                fn = getattr(fn, part)
            device = init_process_group(spec["device"])
            try:
                fn(*spec["args"], device=device, **spec["kwargs"])
            finally:
                destroy_process_group()
        except (ValueError, FileNotFoundError, KeyError, ImportError):
            raise  # one line, from one_line_errors
        except Exception:
            log.exception("training process %s failed", os.environ.get("RANK"))
            raise


if __name__ == "__main__":
    _worker(sys.argv[1])
