"""Run names of experiments with seeds (wsss.workflow.runs)."""

from __future__ import annotations

import pytest

from wsss.workflow.runs import (
    dataset_runs,
    default_seed,
    experiment_seeds,
    parse_run,
    run_experiment,
    run_name,
    source_run,
)

CONFIG = {
    "datasets": {"toy": {"seed": 0}, "other": {"seed": 7}},
    "experiments": {
        "base": {"seeds": [0, 1, 2]},
        "fixed": {"seed": 5, "masks_from": "base"},
        "plain": {"masks_from": "base"},
        "multi": {"seeds": [3, 4], "masks_from": "fixed"},
    },
}


def test_default_seed_and_seeds() -> None:
    assert default_seed(CONFIG, "toy", "base") == 0
    assert default_seed(CONFIG, "other", "base") == 7
    assert default_seed(CONFIG, "other", "fixed") == 5
    assert experiment_seeds(CONFIG, "toy", "base") == [0, 1, 2]
    assert experiment_seeds(CONFIG, "toy", "plain") == [0]


def test_run_names_keep_the_default_seed_plain() -> None:
    assert run_name(CONFIG, "toy", "base", 0) == "base"
    assert run_name(CONFIG, "toy", "base", 2) == "base@2"
    assert run_name(CONFIG, "other", "base", 0) == "base@0"  # that dataset's seed is 7
    assert parse_run(CONFIG, "toy", "base@2") == ("base", 2)
    assert parse_run(CONFIG, "toy", "fixed") == ("fixed", 5)
    assert run_experiment("base@2") == "base"
    with pytest.raises(KeyError, match="'nope' is not a key of experiments"):
        parse_run(CONFIG, "toy", "nope@1")
    with pytest.raises(ValueError, match="integer"):
        parse_run(CONFIG, "toy", "base@x")


def test_sources_follow_the_seed_of_other_runs() -> None:
    assert source_run(CONFIG, "toy", "plain", "masks_from") == "base"
    assert source_run(CONFIG, "toy", "fixed", "masks_from") == "base"  # plain → plain
    assert source_run(CONFIG, "toy", "multi@3", "masks_from") == "fixed@3"
    assert source_run(CONFIG, "toy", "fixed@1", "masks_from") == "base@1"
    assert source_run(CONFIG, "toy", "fixed@0", "masks_from") == "base"  # base's own seed


def test_dataset_runs() -> None:
    runs = dataset_runs(CONFIG, "toy", ["base", "fixed", "multi"])
    assert runs == ["base", "base@1", "base@2", "fixed", "multi@3", "multi@4"]
