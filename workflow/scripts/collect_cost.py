"""Rule collect_cost: the benchmark files of one dataset into results/<dataset>/cost.csv."""

from wsss.stages.cost import run_collect_cost
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_collect_cost(
        snakemake.params.benchmarks,
        snakemake.output[0],
        generation=snakemake.params.generation,
    )
