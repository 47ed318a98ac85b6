"""Rule fetch_dataset: download, verify and lay out what a dataset's root lacks."""

from wsss.stages.fetch import run_fetch_dataset
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_fetch_dataset(
        snakemake.wildcards.dataset,
        snakemake.params.recipe,
        snakemake.params.destination,
        snakemake.output[0],
        overrides=snakemake.params.overrides,
        cache=snakemake.params.cache,
        keep_archives=snakemake.params.keep_archives,
    )
