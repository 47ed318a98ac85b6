"""Rule eval_seg: final segmentation mIoU."""

from wsss.stages.seg import run_eval_seg
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_eval_seg(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.predictions,
        snakemake.output.metrics,
        dataset=snakemake.wildcards.dataset,
        experiment=snakemake.wildcards.experiment,
        split=snakemake.params.split,
        gt_dir=snakemake.params.gt_dir,
    )
