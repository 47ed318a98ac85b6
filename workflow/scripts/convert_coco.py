"""Rule convert_coco: COCO-2014 instance annotations → a VOC-format WSSS tree."""

from wsss.stages.coco import run_convert_coco
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_convert_coco(
        snakemake.params.source,
        snakemake.output[0],
        dataset=snakemake.params.dataset,
        classes=snakemake.params.classes,
        images=snakemake.params.images,
        crowd=snakemake.params.crowd,
    )
