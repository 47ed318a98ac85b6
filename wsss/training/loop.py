"""A resumable, deterministic step-based training loop.

Data order and augmentation are pure functions of (seed, epoch, index), and the loop
checkpoints model, optimizer, gradient scaler, step, RNG state and loss history atomically
every ``checkpoint_every`` steps. A rerun after a kill (or a SLURM requeue) with the same
fingerprint continues from the last checkpoint and ends with the same weights as an
uninterrupted run.

One data loader serves the whole run (its workers live as long as it does, prefetching across
epoch boundaries); on CUDA it pins host memory and copies batches without blocking, the model
and images are channels-last, cuDNN autotunes the fixed-size crops, and ``amp`` runs the
forward pass under autocast (:mod:`wsss.utils.amp`). On the CPU, with ``amp="off"``, none of
that applies and the steps are exactly those of a plain float32 loop.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from wsss.io import UnreadableFileError, load_checkpoint, save_checkpoint
from wsss.training import distributed as ddp
from wsss.training.monitor import TrainingMonitor
from wsss.training.optim import set_poly_lr
from wsss.utils.amp import autocast, grad_scaler, resolve_amp
from wsss.utils.runtime import cudnn_benchmark

__all__ = ["SeededDataset", "train_steps"]

log = logging.getLogger(__name__)


class SeededDataset(Dataset):
    """Wrap a dataset of raw samples with a transform that draws from a per-sample RNG.

    ``transform(sample, rng) -> dict of tensors``; ``rng`` is seeded by (seed, epoch, index).
    Items are indexed by ``(epoch, index)`` (as :func:`train_steps`' sampler asks, so loader
    workers need no shared epoch counter) or by ``index`` alone for epoch 0.
    """

    def __init__(self, base: Dataset, transform: Callable, seed: int) -> None:
        self.base, self.transform, self.seed = base, transform, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        rng = np.random.default_rng([self.seed, epoch, index])
        return self.transform(self.base[index], rng)


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    order = np.random.default_rng([seed, epoch, 2**31 - 1]).permutation(n)
    return [order[i : i + batch_size].tolist() for i in range(0, n - batch_size + 1, batch_size)]


class _StepBatches:
    """The batches of steps ``start, start + 1, …`` without end, as ``[(epoch, index), …]``:
    each epoch a fresh permutation of (seed, epoch) cut into full batches, this rank's share
    of each (:func:`wsss.training.distributed.rank_share`)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, world: int, rank: int):
        self.n, self.batch_size, self.seed, self.start = n, batch_size, seed, start
        self.world, self.rank = world, rank

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        per_epoch = self.n // self.batch_size
        epoch, skip = divmod(self.start, per_epoch)
        while True:
            for batch in _epoch_batches(self.n, self.batch_size, self.seed, epoch)[skip:]:
                if self.world > 1:
                    batch = ddp.rank_share(batch, self.world, self.rank)
                yield [(epoch, i) for i in batch]
            epoch, skip = epoch + 1, 0


# Below this ratio of gradient norm to weight norm no step moves the model: it is saturated.
# Measured on SMAF's synth_voc student: 0.05–0.2 while it learns, 1e-9–1e-13 once collapsed.
STALLED_GRADIENT_RATIO = 1e-7


def _gradient_ratio(params: list[torch.Tensor]) -> float:
    """‖gradient‖ / ‖weights‖ over the ``params`` the last backward pass reached (read at logged
    steps only: it touches every gradient; the scaler has unscaled them by then)."""
    trained = [p for p in params if p.grad is not None]
    if not trained:
        return 0.0
    grads = torch.stack([p.grad.detach().float().norm() for p in trained]).norm()
    weights = torch.stack([p.detach().float().norm() for p in trained]).norm()
    return float(grads / weights.clamp(min=1e-12))


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    """Tensors of ``batch`` on ``device`` (asynchronous from pinned memory); 4-D float tensors
    channels-last when asked."""
    out = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            value = value.to(device, non_blocking=True)
            if channels_last and value.dim() == 4 and value.is_floating_point():
                value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out


def train_steps(
    *,
    model: torch.nn.Module,
    dataset: SeededDataset,
    loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor | Mapping[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    steps: int,
    batch_size: int,
    seed: int,
    device: torch.device,
    poly_power: float,
    resume_path: str | os.PathLike,
    fingerprint: str,
    checkpoint_every: int,
    log_every: int = 10,
    num_workers: int = 0,
    schedule_steps: int | None = None,
    sync_bn: bool = False,
    amp: str = "off",
    tensorboard_dir: str | os.PathLike | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> list[dict]:
    """Train ``model`` for ``steps`` optimizer steps; return the loss history.

    Args:
        loss_fn: ``(model, batch) -> loss``, a scalar or a mapping with the scalar ``"loss"``
            and further terms (logged to TensorBoard); the batch is already on ``device``. It
            runs under autocast when ``amp`` asks for it.
        resume_path: where the rolling checkpoint lives; it is used only when its
            ``fingerprint`` matches (a changed config starts afresh) and deleted at the end.
        fingerprint: a hash of everything that determines the run (config, data ids).
        schedule_steps: the poly schedule's length (default ``steps``). Shorter reproduces
            CDA's quirk: the lr decays to its last value at ``schedule_steps − 1`` and stays
            there, as the originals' PolyOptimizer does past its ``max_step``.
        sync_bn: with more than one process, convert BatchNorm to SyncBatchNorm (GPU only).
        amp: ``"auto" | "bf16" | "fp16" | "off"`` (:func:`wsss.utils.amp.resolve_amp`); fp16
            scales the loss with a gradient scaler, whose state the resume checkpoint keeps.
        tensorboard_dir: folder of the run's TensorBoard event file (rank 0 writes it).
        scaler: the fp16 gradient scaler to use (default: ``torch.amp.GradScaler``'s settings).

    Under a process group (:mod:`wsss.training.distributed`) each rank trains on its equal
    slice of every global batch of ``batch_size`` and gradients are averaged over the ranks,
    so the world follows the one-process run; the logged loss is the mean over the ranks and
    only rank 0 writes the rolling checkpoint (every rank resumes from it).

    Returns:
        ``[{"step", "loss", "lr"}, ...]`` every ``log_every`` steps.
    """
    if len(dataset) < batch_size:
        raise ValueError(f"dataset has {len(dataset)} samples, fewer than batch_size={batch_size}")
    world, rank = ddp.world_size(), ddp.rank()
    ddp.check_divisible(batch_size, world)
    resume_path = Path(resume_path)
    horizon = steps if schedule_steps is None else int(schedule_steps)
    amp = resolve_amp(amp, device)
    scaler = scaler if scaler is not None else grad_scaler(amp, device)
    cuda = device.type == "cuda"
    step, history = 0, []
    # The model moves first: optimizer.load_state_dict puts its buffers on the params' device.
    model.to(device).train()
    if cuda:
        model.to(memory_format=torch.channels_last)
    if world > 1:
        if sync_bn:
            model = ddp.convert_sync_batchnorm(model, device)
        torch.manual_seed(ddp.rank_seed(seed, rank))
    state = _read_resume_state(resume_path, rank)
    if state is not None:
        if state["fingerprint"] == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            rng = state
            if world > 1 and len(state.get("rank_rng") or []) == world:
                rng = state["rank_rng"][rank]
            torch.set_rng_state(rng["torch_rng"])
            if cuda and rng.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(rng["cuda_rng"], device)
            step, history = int(state["step"]), list(state["history"])
            log.info("resuming from %s at step %d", resume_path, step)
        else:
            log.info("ignoring %s: it belongs to a different configuration", resume_path)
    if world > 1:
        ddp.broadcast_module(model)
        if ddp.broadcast_int(step, device) != step:
            raise RuntimeError(f"rank {rank} would resume at step {step}, unlike rank 0")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if amp != "off":
        scaled = ", gradient scaler" if scaler.is_enabled() else ""
        log.info("mixed precision: %s autocast%s", amp, scaled)

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    # One loader for the whole run: its workers persist across epochs (what persistent_workers
    # gives a loader per epoch) and prefetch over epoch boundaries. A private generator:
    # creating a loader must not consume the global RNG that dropout uses, or a run resumed
    # mid-epoch would diverge from an uninterrupted one.
    loader = DataLoader(
        dataset,
        batch_sampler=_StepBatches(len(dataset), batch_size, seed, step, world, rank),
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=cuda,
    )
    monitor = TrainingMonitor(
        tensorboard_dir if rank == 0 else None, images_per_step=batch_size, history=history
    )
    bar = tqdm(total=steps, initial=step, desc="train", mininterval=5, disable=rank or None)
    running, stalled = 0.0, False
    batches = iter(loader)
    with cudnn_benchmark(cuda):  # fixed-size crops: let cuDNN pick its fastest kernels once
        while step < steps:
            batch = _to_device(next(batches), device, channels_last=cuda)
            ready = monitor.clock()
            lr = set_poly_lr(optimizer, min(step, horizon - 1), horizon, poly_power)
            with autocast(amp, device):
                out = loss_fn(model, batch)
            terms = dict(out) if isinstance(out, Mapping) else {"loss": out}
            loss = terms.pop("loss")
            # the global mean before the check, so that every rank stops together
            value = loss.detach() if world == 1 else ddp.global_mean(loss)
            if not torch.isfinite(value):
                raise FloatingPointError(f"loss became {value.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if world > 1:
                ddp.average_gradients(params)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            running += value.item()
            bar.update(1)
            logged = step % log_every == 0 or step == steps
            if logged and not stalled:
                ratio = _gradient_ratio(params)
                if ratio < STALLED_GRADIENT_RATIO:
                    stalled = True
                    log.warning(
                        "step %d: the gradient is %.1e of the weights' norm: the model is "
                        "saturated (e.g. a softmax pushed to 0/1 by a diverged step) and the "
                        "remaining steps will hardly change it",
                        step,
                        ratio,
                    )
            if logged:
                n = log_every if step % log_every == 0 else step % log_every
                history.append({"step": step, "loss": running / n, "lr": lr})
            if step % checkpoint_every == 0 and step < steps:
                extra = {"rank_rng": ddp.gather_rng_states(device)} if world > 1 else {}
                if rank == 0:
                    state = _resume_state(model, optimizer, step, history, device, fingerprint)
                    if scaler.is_enabled():
                        state["scaler"] = scaler.state_dict()
                    save_checkpoint(resume_path, {**state, **extra})
            monitor.step(ready, terms)
            if logged:
                perf = monitor.log(step, running / n, lr)
                bar.set_postfix(loss=f"{running / n:.4f}")
                log.info(
                    "step %d/%d loss %.4f lr %.2e (%.1f images/s, %.0f %% waiting for data)",
                    step,
                    steps,
                    running / n,
                    lr,
                    perf["images_per_s"],
                    100 * perf["data_wait_share"],
                )
                running = 0.0
    del batches, loader  # stops the loader's workers
    bar.close()
    monitor.close(step, device)
    if rank == 0:
        resume_path.unlink(missing_ok=True)
    return history


_RESUME_KEYS = frozenset({"model", "optimizer", "torch_rng", "step", "history", "fingerprint"})


def _read_resume_state(path: Path, rank: int) -> dict | None:
    """The rolling checkpoint at ``path``, or None when there is none. One that cannot be read
    (truncated, corrupt, tampered, or missing a field) is set aside as ``<path>.corrupt`` (by
    rank 0), with a warning, and training starts afresh instead of failing on every rerun."""
    if not path.is_file():
        return None
    aside = path.with_name(f"{path.name}.corrupt")
    remedy = f"set aside as {aside.name}, training starts afresh"
    try:
        state = load_checkpoint(path, remedy=remedy)
        missing = _RESUME_KEYS - set(state) if isinstance(state, dict) else _RESUME_KEYS
        if missing:
            raise UnreadableFileError(f"{path} lacks {sorted(missing)}: {remedy}")
    except (UnreadableFileError, FileNotFoundError) as error:
        if rank == 0 and path.is_file():
            os.replace(path, aside)
            log.warning("%s", error)
        return None
    return state


def _resume_state(model, optimizer, step: int, history: list, device, fingerprint: str) -> dict:
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "step": step,
        "history": history,
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "fingerprint": fingerprint,
    }
