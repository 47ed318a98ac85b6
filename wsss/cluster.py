"""Per-rule cluster resources from the config's ``resources:`` section, as Snakemake values."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SCALED_KEYS", "merged_resources", "rule_resources", "scaled"]

SCALED_KEYS = ("mem_mb", "runtime")  # grow by retry_scale ** (attempt - 1) on each retry
_EXCLUSIVE = ("cpus_per_task", "cpus_per_gpu")  # the SLURM plugin accepts one of the two


def merged_resources(section: Mapping[str, Any] | None, rule: str) -> dict[str, Any]:
    """``section["default"]`` with ``section[rule]`` on top (both optional).

    ``cpus_per_task`` and ``cpus_per_gpu`` exclude each other: a rule entry that names one drops
    the other inherited from ``default``.

    Args:
        section: the config's ``resources:`` mapping (``default``, ``<rule>`` entries), or None.
        rule: the rule name.

    Returns:
        The merged entry (keys ``gpu``, ``cpus_per_task``/``cpus_per_gpu``, ``mem_mb``,
        ``runtime``, ``retry_scale``), empty when nothing is configured.
    """
    section = section or {}
    merged = dict(section.get("default") or {})
    own = dict(section.get(rule) or {})
    for key, other in (_EXCLUSIVE, _EXCLUSIVE[::-1]):
        if key in own:
            merged.pop(other, None)
    merged.update(own)
    return merged


def scaled(base: float, factor: float) -> Callable[..., int]:
    """A Snakemake resource function: ``ceil(base * factor ** (attempt - 1))``.

    Args:
        base: the value of the first attempt (MB or minutes).
        factor: the growth per retry (≥ 1).

    Returns:
        A callable ``(wildcards, attempt) -> int`` that Snakemake evaluates per job attempt.
    """

    def value(wildcards, attempt: int) -> int:
        return math.ceil(base * factor ** (attempt - 1))

    return value


def rule_resources(section: Mapping[str, Any] | None, rule: str) -> dict[str, Any]:
    """The ``resources:`` of ``rule``: ``gpu`` (omitted when 0), CPUs, and ``mem_mb`` and
    ``runtime`` that grow by ``retry_scale`` per retry (``--retries``).

    Args:
        section: the config's ``resources:`` mapping, or None (no resources).
        rule: the rule name.

    Returns:
        Keyword arguments for a rule's ``resources:`` directive.
    """
    merged = merged_resources(section, rule)
    factor = float(merged.pop("retry_scale", 1.0))
    if not merged.get("gpu"):
        merged.pop("gpu", None)
        merged.pop("cpus_per_gpu", None)  # ignored without a GPU; threads decide then
    for key in SCALED_KEYS:
        if key in merged:
            merged[key] = scaled(merged[key], factor)
    return merged
