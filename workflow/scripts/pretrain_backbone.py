"""Rule pretrain_backbone: one backbone trained on the shape corpus, saved as pretrained weights."""

from wsss.stages.pretrain import run_pretrain_backbone
from wsss.utils.runtime import one_line_errors, pick_device, start_job

start_job(snakemake.log[0], snakemake.threads, snakemake.params.seed)
with one_line_errors():
    run_pretrain_backbone(
        snakemake.input.corpus,
        snakemake.output.weights,
        snakemake.output.loss_log,
        snakemake.output.manifest,
        backbone=snakemake.params.backbone,
        train=snakemake.params.train,
        seed=snakemake.params.seed,
        holdout=snakemake.params.holdout,
        device=pick_device(snakemake.params.device),
    )
