"""Rule infer_cam: multi-scale + flip CAMs, one .npz per image."""

from wsss.settings import CamInferSettings
from wsss.stages.cam import run_infer_cam
from wsss.stages.sharding import parse_shard
from wsss.utils.runtime import one_line_errors, pick_device, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    infer = CamInferSettings.from_mapping(snakemake.params.infer)
    run_infer_cam(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.model,
        snakemake.output[0],
        split=snakemake.params.split,
        scales=infer.scales,
        flip=infer.flip,
        normalization=infer.normalization,
        procedure=infer.procedure,
        device=pick_device(snakemake.params.device),
        amp=snakemake.params.amp,
        shard=parse_shard(getattr(snakemake.wildcards, "scatteritem", None)),
    )
