"""Rules merge_shards_*: merge the shard folders of a sharded per-image stage into one folder."""

from wsss.stages.sharding import merge_shards
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    merge_shards(list(snakemake.input), snakemake.output[0])
