"""Rule eval_pseudo_labels: pseudo-mask mIoU against the ground truth."""

from wsss.stages.pseudo import run_eval_pseudo_labels
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_eval_pseudo_labels(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.masks,
        snakemake.output.metrics,
        dataset=snakemake.wildcards.dataset,
        experiment=snakemake.wildcards.experiment,
        split=snakemake.params.split,
        gt_dir=snakemake.params.gt_dir,
        bg_threshold=snakemake.params.bg_threshold,
    )
