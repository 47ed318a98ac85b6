"""Rule make_instance_bank: CDA's bank of single-class instances from pseudo masks."""

from wsss.stages.cda import run_make_instance_bank
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_make_instance_bank(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.masks,
        snakemake.output[0],
        split=snakemake.params.split,
        ratio_range=snakemake.params.ratio_range,
    )
