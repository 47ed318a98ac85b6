"""Optimizers with per-group learning-rate multipliers and the WSSS codebases' poly schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["build_optimizer", "poly_lr", "set_poly_lr"]


def build_optimizer(
    param_groups: Sequence[dict],
    *,
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    lr_mults: Mapping[str, float] | None = None,
) -> torch.optim.Optimizer:
    """SGD or AdamW over ``param_groups`` (each ``{"name", "params", "lr_mult"}``).

    Each group's base learning rate is ``lr`` times its multiplier, stored as ``initial_lr``
    for the schedule. ``lr_mults`` (group name → multiplier, e.g. ``{"backbone": 1, "head":
    10}`` for IRN) overrides the multipliers the model proposes; every group must be named.
    The originals' ``PolyOptimizer`` put the weight decay into SGD's momentum slot
    (algorithms.md §1.1); pass ``momentum=weight_decay`` to reproduce that.
    """
    groups = []
    for group in param_groups:
        if lr_mults is None:
            mult = float(group.get("lr_mult", 1.0))
        elif group.get("name") in lr_mults:
            mult = float(lr_mults[group["name"]])
        else:
            raise ValueError(
                f"lr_mults has no entry for parameter group {group.get('name')!r}; "
                f"it has {sorted(lr_mults)}"
            )
        groups.append({"params": list(group["params"]), "lr": lr * mult, "initial_lr": lr * mult})
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; expected 'sgd' or 'adamw'")


def poly_lr(base_lr: float, step: int, max_steps: int, power: float = 0.9) -> float:
    """lr = base · (1 − step/max_steps)^power (PSA/IRN/DeepLab poly schedule)."""
    return base_lr * (1.0 - min(step, max_steps) / max_steps) ** power


def set_poly_lr(optimizer: torch.optim.Optimizer, step: int, max_steps: int, power: float) -> float:
    """Set every group's lr for ``step``; return the first group's lr (for logging)."""
    for group in optimizer.param_groups:
        group["lr"] = poly_lr(group["initial_lr"], step, max_steps, power)
    return optimizer.param_groups[0]["lr"]
