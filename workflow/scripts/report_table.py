"""Rule report_table: miou.csv as an HTML page saying what each number is."""

from wsss.stages.figures import run_report_table
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_report_table(
        snakemake.input[0],
        snakemake.output[0],
        dataset=snakemake.wildcards.dataset,
        classes=snakemake.params.classes,
        experiments=snakemake.params.experiments,
        splits=snakemake.params.splits,
    )
