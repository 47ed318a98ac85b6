"""Rule check_dataset: validate a dataset tree up front and write its index."""

from wsss.stages.dataset import run_check_dataset
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_check_dataset(
        snakemake.params.root,
        snakemake.output[0],
        dataset=snakemake.wildcards.dataset,
        classes=snakemake.params.classes,
        splits=snakemake.params.splits,
        labels_file=snakemake.params.labels_file,
        check_pixels=snakemake.params.check_pixels,
        layout=snakemake.params.layout,
        max_image_pixels=snakemake.params.max_image_pixels,
    )
