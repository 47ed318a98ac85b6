# wsss: weakly supervised semantic segmentation as a Snakemake workflow.
#   snakemake --cores all                       -> results/<each default dataset>/miou.csv
#   snakemake --cores all results/voc/miou.csv  -> the same pipeline on PASCAL VOC 2012 (+ SBD)
#   snakemake --report results/synth/report.html -> the HTML report of the default datasets
import os
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from wsss.config_checks import (
    check_config_values,
    check_empty_overlay_sections,
    check_schema,
    load_config_file,
)
from wsss.workflow.datasets import check_train_complete, with_train_defaults

min_version("9.0")

# envs/wsss.yaml installs wsss from this clone (pip expands ${WSSS_REPO} when --sdm conda
# creates the environment, whatever the working directory)
os.environ.setdefault("WSSS_REPO", workflow.basedir)

# DAG-time checks that name the file, line and key in one line (Snakemake's own messages name no
# file or line, or dump the whole schema). Snakemake parses --configfile overlays before this
# file runs, so only config.yaml's syntax can be checked here (wsss.config_checks).
OVERLAYS = [str(path) for path in workflow.overwrite_configfiles]
if Path("config.yaml").exists():
    try:
        load_config_file("config.yaml")
    except ValueError as error:
        raise WorkflowError(f"config: {error}") from None


configfile: "config.yaml"


SCHEMA = yaml.safe_load(Path(workflow.basedir, "workflow/schemas/config.schema.yaml").read_text())
try:
    check_schema(config, SCHEMA, ["config.yaml", *OVERLAYS])  # the sections as written
    # the one place each recipe's train section gets its dataset's train_defaults (a recipe
    # lists only what differs); in place: Snakemake's `config` is shared
    config.update(with_train_defaults(config))
    check_train_complete(config, SCHEMA["$defs"]["train_required"]["required"])
except ValueError as error:
    raise WorkflowError(f"config: {error}") from None

validate(config, "workflow/schemas/config.schema.yaml")

try:
    check_empty_overlay_sections(config, OVERLAYS)
    check_config_values(config)
except ValueError as error:
    raise WorkflowError(f"config: {error}") from None


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/sharding.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/cam.smk"
include: "workflow/rules/pseudo_labels.smk"
include: "workflow/rules/affinity.smk"
include: "workflow/rules/segmentation.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/cost.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/export.smk"


rule all:
    default_target: True
    input:
        expand("results/{dataset}/miou.csv", dataset=config["default_datasets"]),
        expand("results/{dataset}/cost.csv", dataset=config["default_datasets"]),
        [PLAN.report_files(dataset) for dataset in config["default_datasets"]],
