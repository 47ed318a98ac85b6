"""Rule train_cam: multi-label classifier trained from image-level labels."""

from wsss.settings import TrainSettings
from wsss.stages.cam import run_train_cam
from wsss.training.launch import run_stage
from wsss.training.monitor import tensorboard_folder
from wsss.utils.runtime import one_line_errors, pick_device, start_job

start_job(snakemake.log[0], snakemake.threads, snakemake.params.seed)
with one_line_errors():
    run_stage(
        run_train_cam,
        snakemake.input.index,
        snakemake.params.root,
        snakemake.output.model,
        snakemake.output.loss_log,
        out_tensorboard=tensorboard_folder(snakemake.output.model),
        split=snakemake.params.split,
        model=snakemake.params.model,
        train=TrainSettings.from_mapping(snakemake.params.train),
        seed=snakemake.params.seed,
        method=snakemake.params.method,
        loss=snakemake.params.loss,
        saliency_dir=snakemake.params.saliency_dir,
        cda=snakemake.params.cda,
        device=pick_device(snakemake.params.device),
        amp=snakemake.params.amp,
        gpus=snakemake.resources.get("gpu"),
        sync_bn=snakemake.params.sync_bn,
        threads=snakemake.threads,
        log_path=snakemake.log[0],
    )
