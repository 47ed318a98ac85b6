"""Runs: an experiment trained with one seed, and the name of its results folder.

An experiment trains with its ``seed`` (default: ``datasets.<name>.seed``); with ``seeds: [..]``
it runs once per listed seed. The run with the experiment's own seed keeps the plain folder
``results/<dataset>/<experiment>/``; every other seed runs in ``<experiment>@<seed>/`` beside it.
A run with another seed takes its CAMs, masks, teacher or CDA instances from the runs of its
sources with that same seed (so a seed repeats the whole chain); the plain run uses the plain
runs of its sources.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "dataset_runs",
    "default_seed",
    "experiment_seeds",
    "parse_run",
    "run_experiment",
    "run_name",
    "source_run",
]

SEPARATOR = "@"


def run_experiment(run: str) -> str:
    """The experiment of a run name (``baseline@3`` → ``baseline``)."""
    return run.split(SEPARATOR, 1)[0]


def default_seed(config: Mapping, dataset: str, experiment: str) -> int:
    """``experiments.<experiment>.seed``, else ``datasets.<dataset>.seed``."""
    spec = config["experiments"][experiment]
    return int(spec.get("seed", config["datasets"][dataset]["seed"]))


def experiment_seeds(config: Mapping, dataset: str, experiment: str) -> list[int]:
    """The seeds an experiment runs with: its ``seeds`` list, else its default seed."""
    seeds = config["experiments"][experiment].get("seeds")
    return [int(s) for s in seeds] if seeds else [default_seed(config, dataset, experiment)]


def run_name(config: Mapping, dataset: str, experiment: str, seed: int) -> str:
    """``<experiment>`` for the experiment's default seed, ``<experiment>@<seed>`` otherwise."""
    if int(seed) == default_seed(config, dataset, experiment):
        return experiment
    return f"{experiment}{SEPARATOR}{int(seed)}"


def parse_run(config: Mapping, dataset: str, run: str) -> tuple[str, int]:
    """``(experiment, seed)`` of a run name.

    Raises:
        KeyError: the experiment is unknown (names it and the valid ones).
        ValueError: the part after ``@`` is no non-negative integer.
    """
    experiment, _, seed = run.partition(SEPARATOR)
    if experiment not in config["experiments"]:
        raise KeyError(
            f"run {run!r}: {experiment!r} is not a key of experiments "
            f"({sorted(config['experiments'])})"
        )
    if not seed:
        return experiment, default_seed(config, dataset, experiment)
    if not seed.isdigit():
        raise ValueError(f"run {run!r}: the seed after {SEPARATOR!r} must be an integer")
    return experiment, int(seed)


def source_run(config: Mapping, dataset: str, run: str, key: str) -> str:
    """The run whose output ``run`` reads through ``experiments.<experiment>.<key>``
    (``masks_from``, ``cams_from``, ``teacher`` or ``instances_from``): the source's plain run
    for a plain run, the source at the same seed otherwise."""
    experiment, seed = parse_run(config, dataset, run)
    source = config["experiments"][experiment][key]
    if SEPARATOR not in run:
        return source
    return run_name(config, dataset, source, seed)


def dataset_runs(config: Mapping, dataset: str, experiments: list[str]) -> list[str]:
    """The run names of ``experiments`` (each at each of its seeds) on ``dataset``."""
    return [
        run_name(config, dataset, name, seed)
        for name in experiments
        for seed in experiment_seeds(config, dataset, name)
    ]
