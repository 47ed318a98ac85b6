"""Multi-process data-parallel training: process groups, rank shares, gradient averaging.

A world of N processes trains exactly what one process trains: every step, each rank takes a
disjoint, equal slice of the same global batch, and the gradients are averaged over the ranks
before the optimizer step. :mod:`wsss.training.launch` starts the world.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "world_size",
    "rank",
    "is_main_process",
    "check_divisible",
    "rank_share",
    "init_process_group",
    "destroy_process_group",
    "convert_sync_batchnorm",
    "broadcast_module",
    "broadcast_int",
    "average_gradients",
    "global_mean",
    "rank_seed",
    "gather_rng_states",
]

log = logging.getLogger(__name__)


def world_size() -> int:
    """The number of training processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0, the only rank that writes checkpoints, artifacts and logs."""
    return rank() == 0


def check_divisible(batch_size: int, world: int) -> None:
    """Raise ``ValueError`` naming ``batch_size`` unless it splits evenly over ``world`` ranks."""
    if batch_size % world:
        raise ValueError(
            f"batch_size={batch_size} is not divisible by the number of training processes "
            f"({world}): every process must take an equal share of the global batch"
        )


def rank_share(batch: Sequence[int], world: int, rank: int) -> list[int]:
    """Rank ``rank``'s contiguous ``len(batch) / world`` slice of a global batch of indices."""
    check_divisible(len(batch), world)
    per = len(batch) // world
    return list(batch[rank * per : (rank + 1) * per])


def init_process_group(device_type: str) -> torch.device:
    """Join the world torchrun described in the environment; return this rank's device.

    ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``) come from
    the launcher. CUDA ranks use NCCL on ``cuda:<LOCAL_RANK>``; CPU ranks use gloo.
    """
    missing = [k for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if k not in os.environ]
    if missing:
        raise ValueError(f"not started by torchrun: environment lacks {', '.join(missing)}")
    if device_type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return device


def destroy_process_group() -> None:
    """Leave the world (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def convert_sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Replace every BatchNorm of ``model`` by SyncBatchNorm (same parameter objects, so an
    optimizer built before stays valid). PyTorch syncs only accelerator tensors: on CPU the
    model is returned unchanged with a warning (each rank keeps its own batch statistics)."""
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    if device.type == "cpu":
        if is_main_process():
            log.warning("sync_bn: SyncBatchNorm needs GPUs; BN statistics stay per process")
        return model
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def broadcast_module(model: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (what DDP does when it wraps)."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


def broadcast_int(value: int, device: torch.device) -> int:
    """Rank 0's ``value`` on every rank."""
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.broadcast(t, src=0)
    return int(t.item())


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over the ranks (one all-reduce per dtype).

    A parameter with no gradient on any rank keeps ``grad=None`` (the optimizer skips it, as
    in one process); one with a gradient on some ranks only counts zero on the others.
    """
    params = [p for p in params if p.requires_grad]
    world = world_size()
    for dtype in dict.fromkeys(p.dtype for p in params):
        group = [p for p in params if p.dtype == dtype]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in group]
        present = torch.tensor([p.grad is not None for p in group], dtype=dtype)
        flat = torch.cat([g.reshape(-1) for g in grads] + [present.to(group[0].device)])
        dist.all_reduce(flat)
        presence = flat[len(flat) - len(group) :].cpu()
        offset = 0
        for i, p in enumerate(group):
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).div(world) if presence[i] > 0 else None
            offset += n


def global_mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over the ranks (a detached copy)."""
    out = value.detach().clone()
    dist.all_reduce(out)
    return out.div_(world_size())


def rank_seed(seed: int, rank: int) -> int:
    """A per-rank seed for the global torch RNG (dropout), so ranks draw different masks."""
    return int(np.random.default_rng([seed, rank, 2**31 - 2]).integers(2**62))


def gather_rng_states(device: torch.device) -> list[dict]:
    """Every rank's torch (and CUDA) RNG state, in rank order, on every rank."""
    state = {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }
    states: list = [None] * world_size()
    dist.all_gather_object(states, state)
    return states
