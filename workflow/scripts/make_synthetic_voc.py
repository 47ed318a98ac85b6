"""Rule make_synthetic_voc: generate the synthetic VOC-format benchmark."""

from wsss.stages.dataset import run_make_synthetic_voc
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_make_synthetic_voc(
        snakemake.output[0], classes=snakemake.params.classes, params=snakemake.params.synthetic
    )
