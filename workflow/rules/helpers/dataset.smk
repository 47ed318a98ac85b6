# Input and params functions of the rules in dataset.smk (only there).

SYNTHETIC_ROOTS = {spec["root"]: name for name, spec in DATASETS.items() if "synthetic" in spec}
COCO_ROOTS = {spec["root"]: name for name, spec in DATASETS.items() if "coco" in spec}


def synthetic_section(key):
    """A params function for make_synthetic_voc, whose wildcard is the dataset root."""
    return lambda wildcards: DATASETS[SYNTHETIC_ROOTS[wildcards.root]][key]


def coco_section(key):
    """A params function for convert_coco, whose wildcard is the dataset root:
    ``datasets[<name>].coco[key]``."""
    return lambda wildcards: DATASETS[COCO_ROOTS[wildcards.root]]["coco"][key]


def coco_inputs(wildcards):
    """convert_coco's inputs: the COCO-2014 folders and annotation files under coco.source, or
    the manifest of rule fetch_dataset, which unpacks the official zips there (``fetch``)."""
    from wsss.stages.coco import coco_sources, missing_source_message

    name = COCO_ROOTS[wildcards.root]
    source = DATASETS[name]["coco"]["source"]
    if DATASETS[name].get("fetch") and source is not None:
        return dataset_path("fetched", name)
    if source is None or not all(p.exists() for p in coco_sources(source)):
        raise WorkflowError(missing_source_message(name, source))
    return [str(p) for p in coco_sources(source)]


def generation_benchmark_file(rule_name):
    """Rules that write a dataset tree know only its root: ``benchmarks/<rule>/<root>.tsv``
    (collect_cost files them under the dataset whose root it is)."""
    return f"benchmarks/{rule_name}/{{root}}.tsv"


def dataset_sources(wildcards):
    """What check_dataset reads (wsss.workflow.sources.dataset_sources), after the check that a
    real dataset does not train from random weights."""
    check_scratch(wildcards.dataset)
    return from_sources(sources.dataset_sources)(wildcards)
