# wsss: weakly supervised semantic segmentation as a Snakemake workflow.
#   snakemake --cores all                       -> results/<each default dataset>/miou.csv
#   snakemake --cores all results/voc/miou.csv  -> the same pipeline on PASCAL VOC 2012 (+ SBD)
#   snakemake --report results/synth/report.html -> the HTML report of the default datasets
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/sharding.smk"
include: "workflow/rules/cost.smk"
include: "workflow/rules/runs.smk"
include: "workflow/rules/report_inputs.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/cam.smk"
include: "workflow/rules/pseudo_labels.smk"
include: "workflow/rules/affinity.smk"
include: "workflow/rules/segmentation.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/export.smk"


rule all:
    default_target: True
    input:
        expand("results/{dataset}/miou.csv", dataset=config["default_datasets"]),
        expand("results/{dataset}/cost.csv", dataset=config["default_datasets"]),
        [report_files(dataset) for dataset in config["default_datasets"]],
