"""Rule fetch_weights: download, verify and convert one table entry of ImageNet weights."""

from wsss.stages.fetch import run_fetch_weights
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_fetch_weights(
        snakemake.wildcards.name, snakemake.output.weights, snakemake.params.overrides
    )
