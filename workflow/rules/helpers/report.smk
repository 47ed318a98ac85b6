# Input and params functions of the rules in report.smk (only there).


REPORT = dataset_path("report")


def curve_inputs(wildcards):
    """plot_curves' inputs: the loss logs, the threshold curves and the metrics beside them."""
    logs = PLAN.loss_logs(wildcards.dataset)
    curves = list(PLAN.curve_files(wildcards.dataset).values())
    return {
        "curves": curves,
        "curve_metrics": [str(Path(p).with_name("metrics.csv")) for p in curves],
        "logs": [path for runs in logs.values() for path in runs.values()],
    }


def gallery_inputs(wildcards):
    folders = PLAN.gallery_folders(wildcards.dataset).values()
    return {"folders": sorted({f for entry in folders for f in entry.values() if f})}
