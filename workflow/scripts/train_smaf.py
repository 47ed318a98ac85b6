"""Rule train_smaf: SMAF's student, self-trained on its EPS teacher's fused maps."""

from wsss.settings import TrainSettings
from wsss.stages.smaf import run_train_smaf
from wsss.training.launch import run_stage
from wsss.training.monitor import tensorboard_folder
from wsss.utils.runtime import one_line_errors, pick_device, start_job

start_job(snakemake.log[0], snakemake.threads, snakemake.params.seed)
with one_line_errors():
    run_stage(
        run_train_smaf,
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.teacher,
        snakemake.input.fused,
        snakemake.output.model,
        snakemake.output.loss_log,
        out_tensorboard=tensorboard_folder(snakemake.output.model),
        split=snakemake.params.split,
        train=TrainSettings.from_mapping(snakemake.params.train),
        loss=snakemake.params.loss,
        saliency_dir=snakemake.params.saliency_dir,
        seed=snakemake.params.seed,
        device=pick_device(snakemake.params.device),
        amp=snakemake.params.amp,
        gpus=snakemake.resources.get("gpu"),
        sync_bn=snakemake.params.sync_bn,
        threads=snakemake.threads,
        log_path=snakemake.log[0],
    )
