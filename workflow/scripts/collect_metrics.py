"""Rule collect_metrics: every evaluation of one dataset into results/<dataset>/miou.csv."""

from wsss.stages.report import run_collect_metrics
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_collect_metrics(
        snakemake.input.metrics,
        snakemake.output[0],
        classes=snakemake.params.classes,
        runs=snakemake.params.runs,
    )
