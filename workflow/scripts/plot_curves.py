"""Rule plot_curves: per-class IoU, CAM threshold curves and training losses (matplotlib)."""

from wsss.stages.figures import run_plot_curves
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_plot_curves(
        snakemake.input.miou,
        snakemake.output.per_class,
        snakemake.output.thresholds,
        snakemake.output.losses,
        classes=snakemake.params.classes,
        curves=snakemake.params.curves,
        logs=snakemake.params.logs,
    )
