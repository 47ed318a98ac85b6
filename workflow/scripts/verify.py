"""Rule verify: check an exported archive against its checksums."""

from wsss.stages.export import run_verify
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_verify(snakemake.input[0], snakemake.output[0])
