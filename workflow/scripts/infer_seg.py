"""Rule infer_seg: palette PNG predictions on the evaluation split."""

from wsss.settings import SegInferSettings
from wsss.stages.seg import run_infer_seg
from wsss.stages.sharding import parse_shard
from wsss.utils.runtime import one_line_errors, pick_device, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    infer = SegInferSettings.from_mapping(snakemake.params.infer)
    run_infer_seg(
        snakemake.input.index,
        snakemake.params.root,
        snakemake.input.model,
        snakemake.output[0],
        split=snakemake.params.split,
        scales=infer.scales,
        flip=infer.flip,
        device=pick_device(snakemake.params.device),
        amp=snakemake.params.amp,
        mode=infer.mode,
        crop_size=infer.crop_size,
        stride=infer.stride,
        shard=parse_shard(getattr(snakemake.wildcards, "scatteritem", None)),
    )
