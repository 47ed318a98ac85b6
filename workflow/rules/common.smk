# Shared by all rule files - the config checks that run before the DAG, the constants and
# wildcard constraints, the adapters from wildcards to the plan (wsss.workflow.Plan, where the
# policy lives), pretrained-weight inputs, and resources. Single-use helpers: rules/helpers/.
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from wsss.utils.writable import unwritable_message
from wsss.workflow import Plan, sources
from wsss.workflow.checks import check_references, check_scratch as check_scratch_weights
from wsss.workflow.paths import benchmark_path, dataset_path, run_path

try:
    check_references(config)
except ValueError as error:
    raise WorkflowError(f"config: {error}") from None

for _folder in ("results", "logs"):  # before any job: a read-only subfolder fails late otherwise
    if (_message := unwritable_message(_folder)) is not None:
        raise WorkflowError(_message)

PLAN = Plan(config)
DATASETS = config["datasets"]
WEIGHTS_CACHE = config["weights"]["cache"].rstrip("/")
R = "results/{dataset}"
X = "results/{dataset}/{experiment}"  # {experiment}: a run, <experiment> or <experiment>@<seed>
INDEX = dataset_path("index")


def check_scratch(dataset):
    """Stop a real dataset that would train from random weights (wsss.workflow.checks)."""
    try:
        check_scratch_weights(config, dataset)
    except ValueError as error:
        raise WorkflowError(str(error)) from None


# Every real dataset with a root is checked before the DAG is built (the datasets without one
# cannot run, and check_dataset's input function checks them again).
for _name, _spec in DATASETS.items():
    if _spec["root"] is not None:
        check_scratch(_name)


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)),
    experiment=PLAN.run_pattern(),


def per_run(answer, *args):
    """A params/input function: ``answer(dataset, run, *args)`` of the plan."""
    return lambda wildcards: answer(wildcards.dataset, wildcards.experiment, *args)


def per_dataset(answer, *args):
    """A params/input function: ``answer(dataset, *args)`` of the plan."""
    return lambda wildcards: answer(wildcards.dataset, *args)


def from_sources(answer):
    """An input/params function: ``answer(config, dataset)`` of wsss.workflow.sources (which
    look at the file system), its one-line ValueError a WorkflowError."""

    def lookup(wildcards):
        try:
            return answer(config, wildcards.dataset)
        except ValueError as error:
            raise WorkflowError(str(error)) from None

    return lookup


def section(*keys):
    """A params function returning ``datasets[<dataset>][key1][key2]...``."""

    def lookup(wildcards):
        node = DATASETS[wildcards.dataset]
        for key in keys:
            node = node[key]
        return node

    return lookup


def source_file(key, artifact):
    """An input function: ``artifact`` of the run that ``experiments.<experiment>.<key>`` names
    (cams_from's CAMs for ``key`` None)."""

    def lookup(wildcards):
        ds, run = wildcards.dataset, wildcards.experiment
        source = PLAN.cam_source(ds, run) if key is None else PLAN.source(ds, run, key)
        return run_path(artifact, ds, source)

    return lookup


def with_weights(lookup):
    """A params function: the model entry ``lookup`` returns, with the weights file it loads."""
    return lambda wildcards: PLAN.with_weights(lookup(wildcards))


def pretrained(lookup):
    """An input function: the pretrained-weights file of the model entry ``lookup`` returns."""
    return lambda wildcards: PLAN.weights_file(lookup(wildcards)) or []


def all_cores(wildcards):
    """Every core snakemake was given (1 when it was given none, as for --report)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def training_cores(rule, train_settings):
    """A ``threads:`` function for a training rule (Plan.training_threads)."""
    return lambda wildcards: PLAN.training_threads(
        train_settings(wildcards), PLAN.gpus(rule), all_cores(wildcards)
    )


# Job priorities, for when more jobs are ready than there are cores: the CAM chains first (their
# classifiers are the longest jobs and every later stage of a weak experiment waits for them),
# then training on pseudo masks, and fully supervised training (Plan.seg_train_priority).
CAM_CHAIN_PRIORITY = 2


def rule_resources(rule):
    """A rule's ``resources:`` from config ``resources:`` (``default`` + the rule's entry; memory
    and runtime grow by ``retry_scale`` per retry). Partition, account and GPU model are site
    settings: they live in the SLURM profile (workflow/profiles/slurm)."""
    return PLAN.resources(rule)


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
