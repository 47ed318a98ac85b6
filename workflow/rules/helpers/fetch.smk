# Input and params functions of the rules in fetch.smk (only there).

from wsss.fetch.catalog import ARCHIVES, RECIPES, WEIGHTS, missing_archives, resolve_source


def fetch_destination(dataset):
    """Where fetch_dataset lays out a dataset: its root, or for COCO the coco.source folder that
    convert_coco reads."""
    spec = DATASETS[dataset]
    return spec["coco"]["source"] if "coco" in spec else spec["root"]


def download_overrides(names):
    """The ``downloads.sources`` overrides of ``names`` (absent ones left out)."""
    sources = config["downloads"]["sources"]
    return {name: dict(sources[name]) for name in names if name in sources}


def download_cache(wildcards):
    """Where fetch_dataset / fetch_saliency keep archives (``downloads.cache``, or
    ``<destination>/.downloads``)."""
    return config["downloads"]["cache"] or f"{fetch_destination(wildcards.dataset)}/.downloads"


def fetch_inputs(wildcards):
    """fetch_dataset's inputs: the local archives configured for what the destination lacks.
    An archive that needs a login and has no local path stops the DAG with what to do."""
    dataset = wildcards.dataset
    spec = DATASETS[dataset]
    recipe = spec.get("fetch")
    destination = fetch_destination(dataset)
    if recipe is None:
        raise WorkflowError(f"datasets.{dataset}.fetch is null: nothing to fetch")
    if destination is None:
        key = "coco.source" if "coco" in spec else "root"
        raise WorkflowError(
            f"datasets.{dataset}.{key} is not set: set it to the folder the data should live in "
            f"(rule fetch_dataset lays out {', '.join(RECIPES[recipe])} there)"
        )
    paths = []
    for name in missing_archives(recipe, destination):
        source = resolve_source(name, download_overrides([name]).get(name))
        if source.path is not None:
            paths.append(source.path)
        elif source.url is None:
            raise WorkflowError(ARCHIVES[name].how_to_get or f"{name}: no URL or path")
    return paths


def saliency_overrides(wildcards):
    """The ``downloads.sources`` entry of the dataset's ``saliency_source``, or None."""
    archive = DATASETS[wildcards.dataset]["saliency_source"]
    return download_overrides([archive]).get(archive)


def saliency_fetch_inputs(wildcards):
    """fetch_saliency's inputs: the dataset's fetch manifest or its training split list, and a
    local archive if one is configured."""
    spec = DATASETS[wildcards.dataset]
    if spec.get("fetch"):
        files = [dataset_path("fetched", wildcards.dataset)]
    else:
        files = split_sources(wildcards.dataset, [spec["stage_splits"]["train"]])
    override = saliency_overrides(wildcards) or {}
    if "path" in override:
        files.append(override["path"])
    return files
