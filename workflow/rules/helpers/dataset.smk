# Input and params functions of the rules in dataset.smk (only there).

from wsss.data.layouts import SplitFiles, missing_root_message

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


def dataset_layout(wildcards):
    """The dataset's folder layout (voc when unset)."""
    return DATASETS[wildcards.dataset].get("layout", "voc")


def split_sources(dataset, splits):
    """The files that list the ids of ``splits`` (wsss.data.layouts.SplitFiles: the one map
    from a dataset's layout to its files)."""
    spec = DATASETS[dataset]
    layout = spec.get("layout", "voc")
    return [
        str(path)
        for split in splits
        for path in SplitFiles(layout, spec["root"], split, spec["splits"].get(split)).sources()
    ]


def dataset_sources(wildcards):
    """What check_dataset reads: the generated tree, the fetch manifest of a dataset with a
    ``fetch`` recipe, or a real tree's split files and label file."""
    spec = DATASETS[wildcards.dataset]
    check_scratch(wildcards.dataset)
    root = spec["root"]
    if "synthetic" in spec or "coco" in spec:  # written by make_synthetic_voc / convert_coco
        return root
    layout = dataset_layout(wildcards)
    if root is None or (not spec.get("fetch") and not Path(root).is_dir()):
        raise WorkflowError(
            missing_root_message(
                wildcards.dataset, root, spec["splits"], layout, fetch=spec.get("fetch")
            )
        )
    if spec.get("fetch"):
        return dataset_path("fetched", wildcards.dataset)
    files = split_sources(wildcards.dataset, spec["splits"])
    if spec["labels_file"]:
        files.append(f"{root}/{spec['labels_file']}")
    return files
