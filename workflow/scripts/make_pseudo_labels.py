"""Rule make_pseudo_labels: background threshold + dense CRF → palette PNG pseudo masks."""

from wsss.refine.crf import CRFParams
from wsss.stages.pseudo import run_make_pseudo_labels
from wsss.stages.sharding import parse_shard
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], 1)  # the process pool, not torch, uses the cores here
with one_line_errors():
    run_make_pseudo_labels(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.cams,
        snakemake.output[0],
        split=snakemake.params.split,
        bg_threshold=snakemake.params.bg_threshold,
        crf=CRFParams.parse(snakemake.params.crf),
        ignore_disagreement=snakemake.params.ignore_disagreement,
        crf_labels=snakemake.params.crf_labels,
        processes=snakemake.threads,
        shard=parse_shard(getattr(snakemake.wildcards, "scatteritem", None)),
    )
