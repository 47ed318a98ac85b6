"""Rule fetch_saliency: one saliency map per training image under the dataset root."""

from wsss.stages.fetch import run_fetch_saliency
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_fetch_saliency(
        snakemake.wildcards.dataset,
        snakemake.params.root,
        snakemake.params.saliency_dir,
        snakemake.params.split,
        snakemake.params.archive,
        snakemake.output[0],
        overrides=snakemake.params.overrides,
        cache=snakemake.params.cache,
        keep_archives=snakemake.params.keep_archives,
    )
