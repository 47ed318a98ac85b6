"""wsss.cluster: per-rule resources from the config's resources: section."""

from __future__ import annotations

import math

from wsss.cluster import merged_resources, rule_resources

SECTION = {
    "default": {"cpus_per_task": 2, "mem_mb": 1000, "runtime": 60, "retry_scale": 1.5},
    "train": {"gpu": 1, "cpus_per_gpu": 8, "mem_mb": 4000},
    "crf": {"cpus_per_task": 16},
    "cpu_only": {"gpu": 0, "cpus_per_gpu": 4},
}


def test_rule_entry_overrides_default_key_by_key():
    assert merged_resources(SECTION, "crf") == {
        "cpus_per_task": 16,
        "mem_mb": 1000,
        "runtime": 60,
        "retry_scale": 1.5,
    }
    assert merged_resources(SECTION, "unlisted") == SECTION["default"]
    assert merged_resources(None, "train") == {}
    assert merged_resources({"train": {"gpu": 2}}, "train") == {"gpu": 2}


def test_cpus_per_gpu_replaces_inherited_cpus_per_task():
    merged = merged_resources(SECTION, "train")
    assert merged["cpus_per_gpu"] == 8 and "cpus_per_task" not in merged
    back = merged_resources({"default": {"cpus_per_gpu": 4}, "x": {"cpus_per_task": 3}}, "x")
    assert back == {"cpus_per_task": 3}


def test_memory_and_runtime_grow_per_attempt():
    resources = rule_resources(SECTION, "train")
    assert resources["gpu"] == 1 and resources["cpus_per_gpu"] == 8
    assert "retry_scale" not in resources
    for attempt in (1, 2, 3):
        assert resources["mem_mb"](None, attempt) == math.ceil(4000 * 1.5 ** (attempt - 1))
        assert resources["runtime"](None, attempt) == math.ceil(60 * 1.5 ** (attempt - 1))
    assert resources["mem_mb"](None, 2) == 6000 and resources["runtime"](None, 3) == 135


def test_without_retry_scale_values_stay_constant():
    resources = rule_resources({"default": {"mem_mb": 500}}, "any")
    assert [resources["mem_mb"](None, a) for a in (1, 2, 5)] == [500, 500, 500]


def test_gpu_zero_drops_the_gpu_keys():
    resources = rule_resources(SECTION, "cpu_only")
    assert "gpu" not in resources and "cpus_per_gpu" not in resources
    assert "cpus_per_task" not in resources  # the entry chose per-GPU CPUs: threads decide now
