"""The one table of where the workflow's artifacts live. Rules, the plan and the benchmarks name
an artifact by its key here and never spell its folder.

A run folder is ``results/<dataset>/<run>/`` (:mod:`wsss.workflow.runs`); ``{dataset}`` and
``{experiment}`` left as defaults give Snakemake's wildcard patterns.
"""

from __future__ import annotations

__all__ = [
    "DATASET_FILES",
    "RUN_FILES",
    "benchmark_path",
    "dataset_path",
    "run_path",
    "shard_path",
]

RUN_FILES = {  # artifact → path under a run folder
    "cam_model": "cam/model.pt",
    "cam_log": "cam/train_log.csv",
    "cam_maps": "cam/maps",
    "cam_metrics": "cam/eval/metrics.csv",
    "cam_curve": "cam/eval/threshold_curve.csv",
    "cda_bank": "cda/bank",
    "affinity_labels": "affinity/labels",
    "affinity_model": "affinity/model.pt",
    "affinity_log": "affinity/train_log.csv",
    "pseudo_masks": "pseudo_labels/masks",
    "pseudo_metrics": "pseudo_labels/eval/metrics.csv",
    "seg_model": "seg/model.pt",
    "seg_log": "seg/train_log.csv",
    "seg_predictions": "seg/predictions",
    "seg_metrics": "seg/eval/metrics.csv",
    "manifest": "manifest.json",
}

DATASET_FILES = {  # artifact → path under results/<dataset>/
    "index": "dataset_index.json",
    "fetched": "fetched.json",
    "saliency": "saliency.json",
    "miou": "miou.csv",
    "cost": "cost.csv",
    "report": "report",
    "benchmarks": "benchmarks",
    "shards": "shards",
}


def dataset_path(artifact: str, dataset: str = "{dataset}") -> str:
    """``results/<dataset>/<file>`` of a :data:`DATASET_FILES` key."""
    return f"results/{dataset}/{DATASET_FILES[artifact]}"


def run_path(artifact: str, dataset: str = "{dataset}", run: str = "{experiment}") -> str:
    """``results/<dataset>/<run>/<file>`` of a :data:`RUN_FILES` key."""
    return f"results/{dataset}/{run}/{RUN_FILES[artifact]}"


def shard_path(
    artifact: str,
    item: str = "{scatteritem}",
    dataset: str = "{dataset}",
    run: str = "{experiment}",
) -> str:
    """Where one shard job of a per-image stage writes ``artifact``:
    ``results/<dataset>/shards/<run>/<file>/<k>-of-<K>`` (outside the run folder, so that an
    export does not archive it twice)."""
    return f"{dataset_path('shards', dataset)}/{run}/{RUN_FILES[artifact]}/{item}"


def benchmark_path(rule: str, owner: str = "{experiment}", dataset: str = "{dataset}") -> str:
    """The Snakemake benchmark file of a job: ``results/<dataset>/benchmarks/<owner>/<rule>.tsv``
    (``owner``: the run, or ``_dataset`` for a dataset-level job)."""
    return f"{dataset_path('benchmarks', dataset)}/{owner}/{rule}.tsv"
