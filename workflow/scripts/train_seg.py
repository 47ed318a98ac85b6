"""Rule train_seg: segmentation network on pseudo masks (or ground truth for the oracle)."""

from pathlib import Path

from wsss.settings import TrainSettings
from wsss.stages.seg import run_train_seg
from wsss.training.launch import run_stage
from wsss.training.monitor import tensorboard_folder
from wsss.utils.runtime import one_line_errors, pick_device, start_job

start_job(snakemake.log[0], snakemake.threads, snakemake.params.seed)
with one_line_errors():
    run_stage(
        run_train_seg,
        snakemake.input.index,
        snakemake.params.root,
        snakemake.output.model,
        snakemake.output.loss_log,
        out_tensorboard=tensorboard_folder(snakemake.output.model),
        split=snakemake.params.split,
        # weak supervision: the pseudo-mask folder; full: the ground-truth folder under root
        mask_dir=Path(snakemake.input.masks).resolve()
        if snakemake.input.masks
        else snakemake.params.gt_dir,
        model_name=snakemake.params.model_name,
        model=snakemake.params.model,
        train=TrainSettings.from_mapping(snakemake.params.train),
        seed=snakemake.params.seed,
        device=pick_device(snakemake.params.device),
        amp=snakemake.params.amp,
        gpus=snakemake.resources.get("gpu"),
        sync_bn=snakemake.params.sync_bn,
        threads=snakemake.threads,
        log_path=snakemake.log[0],
    )
