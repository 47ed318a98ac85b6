"""Where a dataset's files come from, as the workflow's inputs: the tree a rule generates, the
manifest of a fetch rule, or the files of a real tree (through :class:`wsss.data.layouts.
SplitFiles`, the one map from a layout to its files). Unlike the :class:`~wsss.workflow.Plan`
these answers look at the file system, so that a missing source stops the DAG with one line
(``ValueError``) before any job runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from wsss.data.layouts import SplitFiles, missing_root_message
from wsss.fetch.catalog import ARCHIVES, RECIPES, missing_archives, resolve_source
from wsss.workflow.paths import dataset_path
from wsss.workflow.plan import Plan

__all__ = [
    "dataset_sources",
    "download_cache",
    "download_overrides",
    "fetch_destination",
    "fetch_inputs",
    "saliency_fetch_inputs",
    "saliency_input",
    "split_sources",
]


def split_sources(config: Mapping, dataset: str, splits) -> list[str]:
    """The files that list the ids of ``splits`` (VOC: the ``ImageSets`` lists; Cityscapes,
    ADE20K: the split's image and label folders)."""
    spec = config["datasets"][dataset]
    layout = spec.get("layout", "voc")
    return [
        str(path)
        for split in splits
        for path in SplitFiles(layout, spec["root"], split, spec["splits"].get(split)).sources()
    ]


def dataset_sources(config: Mapping, dataset: str) -> str | list[str]:
    """What check_dataset reads: the generated tree (synthetic, COCO), the fetch manifest of a
    dataset with a ``fetch`` recipe, or a real tree's split files and label file.

    Raises:
        ValueError: the root is unset, or not a folder without a ``fetch`` recipe to fill it.
    """
    spec = config["datasets"][dataset]
    root = spec["root"]
    if "synthetic" in spec or "coco" in spec:  # written by make_synthetic_voc / convert_coco
        return root
    if root is None or (not spec.get("fetch") and not Path(root).is_dir()):
        layout = spec.get("layout", "voc")
        raise ValueError(
            missing_root_message(dataset, root, spec["splits"], layout, fetch=spec.get("fetch"))
        )
    if spec.get("fetch"):
        return dataset_path("fetched", dataset)
    files = split_sources(config, dataset, spec["splits"])
    if spec["labels_file"]:
        files.append(f"{root}/{spec['labels_file']}")
    return files


def fetch_destination(config: Mapping, dataset: str) -> str | None:
    """Where fetch_dataset lays out a dataset: its root, or for COCO the coco.source folder that
    convert_coco reads."""
    spec = config["datasets"][dataset]
    return spec["coco"]["source"] if "coco" in spec else spec["root"]


def download_overrides(config: Mapping, names) -> dict[str, dict]:
    """The ``downloads.sources`` overrides of ``names`` (absent ones left out)."""
    sources = config["downloads"]["sources"]
    return {name: dict(sources[name]) for name in names if name in sources}


def download_cache(config: Mapping, dataset: str) -> str:
    """Where fetch_dataset / fetch_saliency keep archives (``downloads.cache``, or
    ``<destination>/.downloads``)."""
    return config["downloads"]["cache"] or f"{fetch_destination(config, dataset)}/.downloads"


def fetch_inputs(config: Mapping, dataset: str) -> list[str]:
    """fetch_dataset's inputs: the local archives configured for what the destination lacks.

    Raises:
        ValueError: no recipe, no destination, or an archive that needs a login and has no
            local path (saying what to do).
    """
    spec = config["datasets"][dataset]
    recipe = spec.get("fetch")
    destination = fetch_destination(config, dataset)
    if recipe is None:
        raise ValueError(f"datasets.{dataset}.fetch is null: nothing to fetch")
    if destination is None:
        key = "coco.source" if "coco" in spec else "root"
        raise ValueError(
            f"datasets.{dataset}.{key} is not set: set it to the folder the data should live in "
            f"(rule fetch_dataset lays out {', '.join(RECIPES[recipe])} there)"
        )
    paths = []
    for name in missing_archives(recipe, destination):
        source = resolve_source(name, download_overrides(config, [name]).get(name))
        if source.path is not None:
            paths.append(source.path)
        elif source.url is None:
            raise ValueError(ARCHIVES[name].how_to_get or f"{name}: no URL or path")
    return paths


def saliency_fetch_inputs(config: Mapping, dataset: str) -> list[str]:
    """fetch_saliency's inputs: the dataset's fetch manifest or its training split list, and a
    local archive if one is configured."""
    spec = config["datasets"][dataset]
    if spec.get("fetch"):
        files = [dataset_path("fetched", dataset)]
    else:
        files = split_sources(config, dataset, [spec["stage_splits"]["train"]])
    archive = spec["saliency_source"]
    override = download_overrides(config, [archive]).get(archive, {})
    if "path" in override:
        files.append(override["path"])
    return files


def saliency_input(plan: Plan, dataset: str, run: str) -> str | list[str]:
    """A real dataset's saliency maps as an input of a run that needs them
    (:meth:`Plan.saliency_dir`), so that a missing source is reported before any work: the
    manifest of rule fetch_saliency where ``saliency_source`` names an archive, else the folder
    itself. None needed, or the synthetic generator writes them inside the dataset: ``[]``.

    Raises:
        ValueError: the folder is not there and no archive is named to fetch it (saying where
            the maps come from and which experiments run without them).
    """
    folder = plan.saliency_dir(dataset, run)
    spec = plan.datasets[dataset]
    if folder is None or "synthetic" in spec:
        return []
    if spec.get("saliency_source"):
        return dataset_path("saliency", dataset)
    path = Path(spec["root"]) / folder
    if not path.is_dir():
        raise ValueError(
            f"experiment {run!r} needs saliency maps in {path}: PFAN "
            f"salient-object maps, one <id>.png per {spec['stage_splits']['train']} image, "
            "which EPS's authors distribute (github.com/halbielee/EPS, 'Saliency maps'); set "
            f"datasets.{dataset}.saliency_source: pfan_voc to fetch them (or "
            "downloads.sources.pfan_voc.path to a local copy of the archive), or leave eps and "
            f"smaf out: datasets.{dataset}.experiments: {plan.runs_without_saliency(dataset)}"
        )
    return str(path)
