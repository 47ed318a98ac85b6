"""A resumable, deterministic step-based training loop.

Data order and augmentation are pure functions of (seed, epoch, index), and the loop
checkpoints model, optimizer, step, RNG state and loss history atomically every
``checkpoint_every`` steps. A rerun after a kill (or a SLURM requeue) with the same
fingerprint continues from the last checkpoint and ends with the same weights as an
uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from wsss.io import UnreadableFileError, load_checkpoint, save_checkpoint
from wsss.training import distributed as ddp
from wsss.training.optim import set_poly_lr

__all__ = ["SeededDataset", "train_steps", "config_fingerprint", "file_digest"]

log = logging.getLogger(__name__)


class SeededDataset(Dataset):
    """Wrap a dataset of raw samples with a transform that draws from a per-sample RNG.

    ``transform(sample, rng) -> dict of tensors``; ``rng`` is seeded by (seed, epoch, index).
    """

    def __init__(self, base: Dataset, transform: Callable, seed: int) -> None:
        self.base, self.transform, self.seed, self.epoch = base, transform, seed, 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.transform(self.base[index], rng)


def _epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    order = np.random.default_rng([seed, epoch, 2**31 - 1]).permutation(n)
    return [order[i : i + batch_size].tolist() for i in range(0, n - batch_size + 1, batch_size)]


def train_steps(
    *,
    model: torch.nn.Module,
    dataset: SeededDataset,
    loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor],
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
) -> list[dict]:
    """Train ``model`` for ``steps`` optimizer steps; return the loss history.

    Args:
        loss_fn: ``(model, batch) -> scalar loss``; the batch is already on ``device``.
        resume_path: where the rolling checkpoint lives; it is used only when its
            ``fingerprint`` matches (a changed config starts afresh) and deleted at the end.
        fingerprint: a hash of everything that determines the run (config, data ids).
        schedule_steps: the poly schedule's length (default ``steps``). Shorter reproduces
            CDA's quirk: the lr decays to its last value at ``schedule_steps − 1`` and stays
            there, as the originals' PolyOptimizer does past its ``max_step``.
        sync_bn: with more than one process, convert BatchNorm to SyncBatchNorm (GPU only).

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
    step, history = 0, []
    # The model moves first: optimizer.load_state_dict puts its buffers on the params' device.
    model.to(device).train()
    if world > 1:
        if sync_bn:
            model = ddp.convert_sync_batchnorm(model, device)
        torch.manual_seed(ddp.rank_seed(seed, rank))
    state = _read_resume_state(resume_path, rank)
    if state is not None:
        if state["fingerprint"] == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            rng = state
            if world > 1 and len(state.get("rank_rng") or []) == world:
                rng = state["rank_rng"][rank]
            torch.set_rng_state(rng["torch_rng"])
            if device.type == "cuda" and rng.get("cuda_rng") is not None:
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

    per_epoch = len(dataset) // batch_size
    bar = tqdm(total=steps, initial=step, desc="train", mininterval=5, disable=rank or None)
    running = 0.0
    while step < steps:
        epoch, skip = divmod(step, per_epoch)
        dataset.epoch = epoch
        batches = _epoch_batches(len(dataset), batch_size, seed, epoch)[skip:]
        if world > 1:
            batches = [ddp.rank_share(b, world, rank) for b in batches]
        # A private generator: creating a loader must not consume the global RNG that dropout
        # uses, or a run resumed mid-epoch would diverge from an uninterrupted one.
        loader = DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(seed),
        )
        for batch in loader:
            lr = set_poly_lr(optimizer, min(step, horizon - 1), horizon, poly_power)
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            loss = loss_fn(model, batch)
            # the global mean before the check, so that every rank stops together
            value = loss.detach() if world == 1 else ddp.global_mean(loss)
            if not torch.isfinite(value):
                raise FloatingPointError(f"loss became {value.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                ddp.average_gradients(params)
            optimizer.step()
            step += 1
            running += value.item()
            bar.update(1)
            if step % log_every == 0 or step == steps:
                n = log_every if step % log_every == 0 else step % log_every
                history.append({"step": step, "loss": running / n, "lr": lr})
                bar.set_postfix(loss=f"{running / n:.4f}")
                log.info("step %d/%d loss %.4f lr %.2e", step, steps, running / n, lr)
                running = 0.0
            if step % checkpoint_every == 0 and step < steps:
                extra = {"rank_rng": ddp.gather_rng_states(device)} if world > 1 else {}
                if rank == 0:
                    state = _resume_state(model, optimizer, step, history, device, fingerprint)
                    save_checkpoint(resume_path, {**state, **extra})
            if step >= steps:
                break
    bar.close()
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


def config_fingerprint(*parts: Mapping | list | str | int | float | None) -> str:
    """A stable hash of JSON-serialisable parts (config subtrees, id lists, file digests)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_digest(path: str | os.PathLike) -> str | None:
    """sha256 of a file's bytes (None if it does not exist): ties a resume point to its data."""
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
