"""Rule plot_gallery: image, ground truth, CAM overlay, pseudo mask and prediction per run."""

from wsss.stages.figures import run_plot_gallery
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_plot_gallery(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.output[0],
        runs=snakemake.params.runs,
        train_split=snakemake.params.train_split,
        train_gt=snakemake.params.train_gt,
        val_split=snakemake.params.val_split,
        val_gt=snakemake.params.val_gt,
        count=snakemake.params.images,
    )
