# Path helpers and config look-ups shared by the rules. No algorithms here.
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from wsss.cam.methods import CAM_METHODS
from wsss.cluster import rule_resources as cluster_resources
from wsss.fetch.catalog import ARCHIVES, RECIPES, WEIGHTS, missing_archives, resolve_source
from wsss.fetch.pretrained import pretrained_file, scratch_entries, scratch_message
from wsss.config import (
    check_references,
    dataset_experiments,
    missing_root_message,
    seg_settings,
)
from wsss.runs import parse_run, run_experiment, source_run
from wsss.utils.writable import unwritable_message

try:
    check_references(config)
except ValueError as error:
    raise WorkflowError(f"config: {error}") from None

for _folder in ("results", "logs"):  # before any job: a read-only subfolder fails late otherwise
    if (_message := unwritable_message(_folder)) is not None:
        raise WorkflowError(_message)

DATASETS = config["datasets"]
EXPERIMENTS = config["experiments"]
SYNTHETIC_ROOTS = {spec["root"]: name for name, spec in DATASETS.items() if "synthetic" in spec}
COCO_ROOTS = {spec["root"]: name for name, spec in DATASETS.items() if "coco" in spec}
WEIGHTS_CACHE = config["weights"]["cache"].rstrip("/")
R = "results/{dataset}"


def check_scratch(dataset):
    """Stop when a real dataset would train a model from random weights without
    ``allow_scratch: true`` (one line naming the key and the fetch_weights target)."""
    spec = DATASETS[dataset]
    if "synthetic" in spec or spec.get("allow_scratch", False):
        return
    for key, model in scratch_entries(dataset, spec):
        raise WorkflowError(scratch_message(dataset, key, model["backbone"], WEIGHTS_CACHE))


# Every real dataset with a root is checked before the DAG is built (the datasets without one
# cannot run, and check_dataset's input function checks them again).
for _name, _spec in DATASETS.items():
    if _spec["root"] is not None:
        check_scratch(_name)
X = "results/{dataset}/{experiment}"  # {experiment}: a run, <experiment> or <experiment>@<seed>
RUN_SUFFIX = "(?:@[0-9]+)?"


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)),
    experiment=f"(?:{'|'.join(map(re.escape, EXPERIMENTS))}){RUN_SUFFIX}",


def section(*keys):
    """A params function returning ``datasets[<dataset>][key1][key2]...``."""

    def lookup(wildcards):
        node = DATASETS[wildcards.dataset]
        for key in keys:
            node = node[key]
        return node

    return lookup


def spec_of(run):
    """The config entry of a run's experiment (runs: ``<experiment>[@<seed>]``)."""
    return EXPERIMENTS[run_experiment(run)]


def experiment_of(wildcards):
    """The experiment of the run in the wildcards."""
    return run_experiment(wildcards.experiment)


def run_seed(wildcards):
    """The seed a run trains with (wsss.runs: the experiment's seed, or the one after @)."""
    return parse_run(config, wildcards.dataset, wildcards.experiment)[1]


def experiment_value(key):
    """A params function returning ``experiments[<experiment>][key]``."""
    return lambda wildcards: spec_of(wildcards.experiment)[key]


def synthetic_section(key):
    """A params function for make_synthetic_voc, whose wildcard is the dataset root."""
    return lambda wildcards: DATASETS[SYNTHETIC_ROOTS[wildcards.root]][key]


def coco_section(key):
    """A params function for convert_coco, whose wildcard is the dataset root:
    ``datasets[<name>].coco[key]``."""
    return lambda wildcards: DATASETS[COCO_ROOTS[wildcards.root]]["coco"][key]


def coco_dataset(wildcards):
    """The name of the COCO dataset whose root convert_coco writes."""
    return COCO_ROOTS[wildcards.root]


def coco_classes(wildcards):
    return DATASETS[COCO_ROOTS[wildcards.root]]["classes"]


def coco_inputs(wildcards):
    """convert_coco's inputs: the COCO-2014 folders and annotation files under coco.source, or
    the manifest of rule fetch_dataset, which unpacks the official zips there (``fetch``)."""
    from wsss.stages.coco import coco_sources, missing_source_message

    name = COCO_ROOTS[wildcards.root]
    source = DATASETS[name]["coco"]["source"]
    if DATASETS[name].get("fetch") and source is not None:
        return f"results/{name}/fetched.json"
    if source is None or not all(p.exists() for p in coco_sources(source)):
        raise WorkflowError(missing_source_message(name, source))
    return [str(p) for p in coco_sources(source)]


def dataset_root(wildcards):
    return DATASETS[wildcards.dataset]["root"]


def dataset_layout(wildcards):
    """The dataset's folder layout (voc when unset)."""
    return DATASETS[wildcards.dataset].get("layout", "voc")


def fetch_destination(dataset):
    """Where fetch_dataset lays out a dataset: its root, or for COCO the coco.source folder that
    convert_coco reads."""
    spec = DATASETS[dataset]
    return spec["coco"]["source"] if "coco" in spec else spec["root"]


def dataset_sources(wildcards):
    """What check_dataset reads: the generated tree, the fetch manifest of a dataset with a
    ``fetch`` recipe, or a real tree's split lists and label file (VOC layout) or split image and
    label folders (Cityscapes, ADE20K)."""
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
        return f"results/{wildcards.dataset}/fetched.json"
    if layout != "voc":
        from wsss.data.layouts import SplitFiles  # imports torch: only for these datasets

        return [
            str(path)
            for split, mask_dir in spec["splits"].items()
            for path in SplitFiles(layout, root, split, mask_dir).sources()
        ]
    files = [f"{root}/ImageSets/Segmentation/{split}.txt" for split in spec["splits"]]
    if spec["labels_file"]:
        files.append(f"{root}/{spec['labels_file']}")
    return files


def download_overrides(names):
    """The ``downloads.sources`` overrides of ``names`` (absent ones left out)."""
    sources = config["downloads"]["sources"]
    return {name: dict(sources[name]) for name in names if name in sources}


def download_cache(dataset):
    """Where fetch_dataset / fetch_saliency keep archives (``downloads.cache``, or
    ``<destination>/.downloads``)."""
    return config["downloads"]["cache"] or f"{fetch_destination(dataset)}/.downloads"


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


def cam_method(name):
    """The CAM method of an experiment (``cam_method``; default ``cam``, IRN's classifier)."""
    return spec_of(name).get("cam_method", "cam")


def cam_config(key):
    """A params function: ``key`` of the CAM settings of the experiment's method —
    ``datasets[<dataset>].cam`` for ``cam``, ``datasets[<dataset>].cam_methods[<method>]``
    otherwise (None where that section lacks ``key``)."""

    def lookup(wildcards):
        spec = DATASETS[wildcards.dataset]
        method = cam_method(wildcards.experiment)
        node = spec["cam"] if method == "cam" else spec["cam_methods"][method]
        return node.get(key)

    return lookup


def experiments_where(predicate):
    """Wildcard regex of the runs of the experiments whose spec satisfies ``predicate``."""
    names = [n for n, spec in EXPERIMENTS.items() if predicate(spec)]
    if not names:
        return "(?!)"  # matches nothing
    return f"(?:{'|'.join(map(re.escape, names))}){RUN_SUFFIX}"


def saliency_dir(wildcards):
    """The dataset's saliency folder for experiments whose CAM method learns from saliency
    (``CamMethod.needs_saliency``: eps; smaf's prototype+saliency denoising), else None."""
    spec = DATASETS[wildcards.dataset]
    method = cam_method(wildcards.experiment)
    if not CAM_METHODS[method].needs_saliency(cam_config("loss")(wildcards)):
        return None
    if not spec.get("saliency_dir"):
        raise WorkflowError(
            f"experiment {wildcards.experiment!r} ({method}) needs saliency maps: set "
            f"datasets.{wildcards.dataset}.saliency_dir (e.g. SALImages, PFAN maps as EPS uses)"
        )
    return spec["saliency_dir"]


def saliency_input(wildcards):
    """A real dataset's saliency maps as an input, so that a missing source is reported before
    any work: the manifest of rule fetch_saliency where ``saliency_source`` names an archive,
    else the folder itself. The synthetic generator writes it inside the dataset folder."""
    folder = saliency_dir(wildcards)
    spec = DATASETS[wildcards.dataset]
    if folder is None or "synthetic" in spec:
        return []
    if spec.get("saliency_source"):
        return f"results/{wildcards.dataset}/saliency.json"
    path = Path(spec["root"]) / folder
    if not path.is_dir():
        others = [
            name
            for name in dataset_experiments(config, wildcards.dataset)
            if EXPERIMENTS[name].get("cam_method") not in ("eps", "smaf")
        ]
        raise WorkflowError(
            f"experiment {wildcards.experiment!r} needs saliency maps in {path}: PFAN "
            f"salient-object maps, one <id>.png per {spec['stage_splits']['train']} image, "
            "which EPS's authors distribute (github.com/halbielee/EPS, 'Saliency maps'); set "
            f"datasets.{wildcards.dataset}.saliency_source: pfan_voc to fetch them (or "
            "downloads.sources.pfan_voc.path to a local copy of the archive), or leave eps and "
            f"smaf out: datasets.{wildcards.dataset}.experiments: {others}"
        )
    return str(path)


def saliency_fetch_inputs(wildcards):
    """fetch_saliency's inputs: the dataset's fetch manifest or its training split list, and a
    local archive if one is configured."""
    spec = DATASETS[wildcards.dataset]
    split = spec["stage_splits"]["train"]
    files = [
        f"results/{wildcards.dataset}/fetched.json"
        if spec.get("fetch")
        else f"{spec['root']}/ImageSets/Segmentation/{split}.txt"
    ]
    override = download_overrides([spec["saliency_source"]]).get(spec["saliency_source"], {})
    if "path" in override:
        files.append(override["path"])
    return files


def cda_settings(wildcards):
    """train_cam's CDA settings (datasets.<name>.cda plus the bank folder), or None."""
    if spec_of(wildcards.experiment).get("augment", "none") != "cda":
        return None
    bank = f"results/{wildcards.dataset}/{wildcards.experiment}/cda/bank"
    return dict(DATASETS[wildcards.dataset]["cda"], bank=bank)


def cda_bank(wildcards):
    settings = cda_settings(wildcards)
    return settings["bank"] if settings else []


def source_file(key, path):
    """An input function: ``results/<dataset>/<source run>/<path>`` for the run that
    ``experiments.<experiment>.<key>`` names (teacher, instances_from; wsss.runs.source_run)."""
    return lambda wildcards: (
        f"results/{wildcards.dataset}/"
        f"{source_run(config, wildcards.dataset, wildcards.experiment, key)}/{path}"
    )


def cam_bg_threshold(key):
    """A params function: the background threshold of a CAM stage — the CAM method's own
    ``bg_threshold`` when it sets one (softmax maps of eps/smaf), else ``key``'s section value
    (``("cam", "eval")`` or ``("pseudo_labels",)``)."""

    def lookup(wildcards):
        masks = mask_source(wildcards.dataset, wildcards.experiment)
        method = cam_method(cam_source(wildcards.dataset, masks))
        spec = DATASETS[wildcards.dataset]
        if method != "cam" and "bg_threshold" in spec["cam_methods"][method]:
            return spec["cam_methods"][method]["bg_threshold"]
        return section(*key, "bg_threshold")(wildcards)

    return lookup


def cam_source(dataset, run):
    """The run whose CAMs ``run`` uses: the run of its cams_from, or itself."""
    if "cams_from" not in spec_of(run):
        return run
    return source_run(config, dataset, run, "cams_from")


def cam_file(path):
    """An input function: ``results/<dataset>/<CAM source experiment>/cam/<path>``."""
    return lambda wildcards: (
        f"results/{wildcards.dataset}/{cam_source(wildcards.dataset, wildcards.experiment)}/cam/"
        f"{path}"
    )


def refined_by(*methods):
    """Wildcard regex of the runs of the experiments whose ``refine`` is one of ``methods``."""
    return experiments_where(lambda spec: spec.get("refine") in methods)


def affinity_section(key):
    """A params function: ``datasets[<dataset>].affinity[<experiment's refine>][key]``."""
    return lambda wildcards: DATASETS[wildcards.dataset]["affinity"][
        spec_of(wildcards.experiment)["refine"]
    ][key]


def affinity_crf_params(wildcards):
    return config["crf_presets"][affinity_section("labels")(wildcards)["crf"]]


def affinity_inputs(wildcards):
    """train_affinity's weight files: local ImageNet weights and/or the CAM model it copies."""
    model = affinity_section("model")(wildcards)
    files = {"pretrained": weights_file(model) or []}
    files["cam_model"] = cam_file("model.pt")(wildcards) if model["init_from_cam"] else []
    return files


def pseudo_bg_threshold(wildcards):
    """The background score behind the pseudo masks (None: PSA's α plane has no threshold)."""
    refine = spec_of(mask_source(wildcards.dataset, wildcards.experiment))["refine"]
    if refine == "crf":
        return cam_bg_threshold(("pseudo_labels",))(wildcards)
    return DATASETS[wildcards.dataset]["affinity"][refine]["walk"].get("bg_threshold")


def crf_label_set(wildcards):
    """The pseudo-mask CRF's labels: the CAM method's ``crf_labels`` when it sets one (smaf:
    ``all``, as released), else ``image`` (IRN's K_img + 1)."""
    method = cam_method(cam_source(wildcards.dataset, wildcards.experiment))
    if method == "cam":
        return "image"
    return DATASETS[wildcards.dataset]["cam_methods"][method].get("crf_labels", "image")


def crf_params(wildcards):
    """The CRF parameter set named by ``pseudo_labels.crf`` (from ``crf_presets``)."""
    name = DATASETS[wildcards.dataset]["pseudo_labels"]["crf"]
    return config["crf_presets"][name]


def seg_model_name(wildcards):
    return spec_of(wildcards.experiment)["seg_model"]


def seg_model_config(wildcards):
    """The experiment's seg model entry without its train/infer overrides (see seg_section)."""
    model = DATASETS[wildcards.dataset]["seg"]["models"][seg_model_name(wildcards)]
    return {k: v for k, v in model.items() if k not in ("train", "infer")}


def seg_section(key):
    """A params function: datasets[<dataset>].seg[key] (train or infer) with the keys the
    experiment's seg model entry overrides."""
    return lambda wildcards: seg_settings(
        DATASETS[wildcards.dataset], seg_model_name(wildcards), key
    )


def split_masks(stage):
    """A params function: the ground-truth mask folder of the split a stage uses."""

    def lookup(wildcards):
        spec = DATASETS[wildcards.dataset]
        return spec["splits"][spec["stage_splits"][stage]]

    return lookup


def mask_source(dataset, run):
    """The run whose pseudo masks a weak run trains on: the run of its masks_from, or itself."""
    if "masks_from" not in spec_of(run):
        return run
    return source_run(config, dataset, run, "masks_from")


def seg_masks(wildcards):
    """Training masks of train_seg: the pseudo masks of the experiment (or of the one its
    masks_from names); none (ground truth) for full supervision."""
    if spec_of(wildcards.experiment)["supervision"] == "full":
        return []
    source = mask_source(wildcards.dataset, wildcards.experiment)
    return f"results/{wildcards.dataset}/{source}/pseudo/masks"


def weights_file(model):
    """The weights file a model entry loads (wsss.fetch.pretrained.pretrained_file), or None."""
    return pretrained_file(model["pretrained"], model["backbone"], WEIGHTS_CACHE)


def with_weights(lookup):
    """A params function: the model entry ``lookup`` returns, ``pretrained`` resolved to the
    file it loads (a table name → ``<weights.cache>/<name>.pth``, written by fetch_weights)."""

    def resolved(wildcards):
        model = dict(lookup(wildcards))
        model["pretrained"] = weights_file(model)
        return model

    return resolved


def pretrained(*keys):
    """An input function: the pretrained-weights file a model config names, if any."""

    def lookup(wildcards):
        if keys == ("seg",):
            node = seg_model_config(wildcards)
        elif keys == ("cam",):
            node = cam_config("model")(wildcards)
        else:
            node = section(*keys)(wildcards)
        return weights_file(node) or []

    return lookup


def all_cores(wildcards):
    """Every core snakemake was given (1 when it was given none, as for --report)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def training_cores(rule, train_settings):
    """A ``threads:`` function for a training rule: the cores its job keeps busy, i.e. per
    process (one per GPU, see run_stage) its torch threads (``train.threads``, fixed so that
    results do not depend on the cores) plus its data-loader workers; at most what Snakemake was
    given. Reserving all cores for a one-thread job would only keep the other cores idle."""

    def cores(wildcards):
        train = train_settings(wildcards)
        ranks = max(1, int(rule_resources(rule).get("gpu", 0) or 0))
        per_rank = int(train.get("threads", 1)) + int(train.get("num_workers", 0))
        return min(all_cores(wildcards), ranks * per_rank)

    return cores


def seg_train_threads(wildcards):
    """Cores for train_seg. A fully supervised run depends on nothing but the data, so where the
    dataset also runs weak experiments it gets one core and runs beside the CAM chain; weak-label
    training waits for the pseudo masks and then takes the cores it uses (:func:`training_cores`),
    as does fully supervised training on a dataset without weak experiments (Cityscapes,
    ADE20K)."""
    runs = dataset_experiments(config, wildcards.dataset)
    beside_cams = any(EXPERIMENTS[name]["supervision"] == "weak" for name in runs)
    if spec_of(wildcards.experiment)["supervision"] == "full" and beside_cams:
        return 1
    return training_cores("train_seg", seg_section("train"))(wildcards)


# Job priorities, for when more jobs are ready than there are cores: the CAM chains first (their
# classifiers are the longest jobs and every later stage of a weak experiment waits for them),
# then training on pseudo masks, and fully supervised training, which nothing waits for, last.
CAM_CHAIN_PRIORITY = 2


def seg_train_priority(wildcards):
    return 1 if spec_of(wildcards.experiment)["supervision"] == "weak" else 0


def rule_resources(rule):
    """A rule's ``resources:`` from config ``resources:`` (``default`` + the rule's entry; memory
    and runtime grow by ``retry_scale`` per retry). Partition, account and GPU model are site
    settings: they live in the SLURM profile (workflow/profiles/slurm)."""
    return cluster_resources(config.get("resources"), rule)


# Light rules stay on the submitting host under a cluster executor (no job start-up per table).
localrules:
    fetch_weights,
    fetch_dataset,
    fetch_saliency,
    collect_metrics,
    collect_cost,
    report_table,
    plot_curves,
    plot_gallery,
