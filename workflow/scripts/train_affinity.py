"""Rule train_affinity: AffinityNet or IRNet's boundary branch on confident-region labels."""

from wsss.settings import TrainSettings
from wsss.stages.affinity import run_train_affinity
from wsss.training.launch import run_stage
from wsss.training.monitor import tensorboard_folder
from wsss.utils.runtime import one_line_errors, pick_device, start_job

start_job(snakemake.log[0], snakemake.threads, snakemake.params.seed)
with one_line_errors():
    run_stage(
        run_train_affinity,
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.labels,
        snakemake.input.cam_model or None,
        snakemake.output.model,
        snakemake.output.loss_log,
        out_tensorboard=tensorboard_folder(snakemake.output.model),
        split=snakemake.params.split,
        method=snakemake.params.method,
        model=snakemake.params.model,
        train=TrainSettings.from_mapping(snakemake.params.train),
        radius=snakemake.params.radius,
        seed=snakemake.params.seed,
        device=pick_device(snakemake.params.device),
        amp=snakemake.params.amp,
        gpus=snakemake.resources.get("gpu"),
        sync_bn=snakemake.params.sync_bn,
        threads=snakemake.threads,
        log_path=snakemake.log[0],
    )
