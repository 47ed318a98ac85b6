"""Rules export and export_dataset: a result directory as .tar.gz with its SHA256SUMS."""

from wsss.stages.export import run_export
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_export(
        snakemake.params.directory,
        snakemake.output.archive,
        arcname=snakemake.params.arcname,
        exclude=snakemake.params.exclude,
        include=snakemake.params.include,
    )
