"""Rule eval_cam: CAM mIoU at the fixed and the GT-swept background threshold."""

from wsss.stages.cam import run_eval_cam
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_eval_cam(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.cams,
        snakemake.output.metrics,
        snakemake.output.curve,
        dataset=snakemake.wildcards.dataset,
        experiment=snakemake.wildcards.experiment,
        split=snakemake.params.split,
        gt_dir=snakemake.params.gt_dir,
        bg_threshold=snakemake.params.bg_threshold,
        sweep=snakemake.params.eval["sweep"],
    )
