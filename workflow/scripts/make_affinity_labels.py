"""Rule make_affinity_labels: confident foreground/background regions (255 = unsure) from CAMs."""

from wsss.refine.crf import CRFParams
from wsss.stages.affinity import run_make_affinity_labels
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], 1)  # the process pool, not torch, uses the cores here
with one_line_errors():
    run_make_affinity_labels(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.cams,
        snakemake.output[0],
        split=snakemake.params.split,
        method=snakemake.params.method,
        labels=snakemake.params.labels,
        crf=CRFParams.parse(snakemake.params.crf),
        processes=snakemake.threads,
    )
