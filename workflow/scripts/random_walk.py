"""Rule random_walk: CAM seeds propagated over learned affinities → palette PNG pseudo masks."""

from wsss.stages.affinity import run_random_walk
from wsss.stages.sharding import parse_shard
from wsss.utils.runtime import one_line_errors, pick_device, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_random_walk(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.cams,
        snakemake.input.model,
        snakemake.output[0],
        split=snakemake.params.split,
        method=snakemake.params.method,
        walk=snakemake.params.walk,
        device=pick_device(snakemake.params.device),
        amp=snakemake.params.amp,
        shard=parse_shard(getattr(snakemake.wildcards, "scatteritem", None)),
    )
