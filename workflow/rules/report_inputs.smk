# Inputs and params of the report rules: which curves, logs and folders each dataset's runs have.

_TRAINED = {  # training step → (report panel, its loss log under the run folder)
    "train_cam": ("CAM classifier", "cam/train_log.csv"),
    "train_self": ("CAM classifier", "cam/train_log.csv"),
    "train_affinity": ("affinity / boundary network", "affinity/train_log.csv"),
    "train_seg": ("segmentation network", "seg/train_log.csv"),
}


def own_steps(dataset, run):
    """The rules that run for ``run`` itself (not for the runs it builds on)."""
    return [step for owner, step in experiment_jobs(dataset, run) if owner == run]


def curve_files(wildcards):
    """Run → threshold curve, for the runs that evaluate their own CAMs."""
    return {
        run: f"results/{wildcards.dataset}/{run}/cam/eval/threshold_curve.csv"
        for run in runs_of(wildcards.dataset)
        if "eval_cam" in own_steps(wildcards.dataset, run)
    }


def loss_logs(wildcards):
    """Panel → run → train_log.csv of every network the dataset's runs train."""
    panels = {panel: {} for panel, _ in _TRAINED.values()}
    for run in runs_of(wildcards.dataset):
        for step in own_steps(wildcards.dataset, run):
            if step in _TRAINED:
                panel, path = _TRAINED[step]
                panels[panel][run] = f"results/{wildcards.dataset}/{run}/{path}"
    return panels


def curve_inputs(wildcards):
    logs = [path for runs in loss_logs(wildcards).values() for path in runs.values()]
    curves = list(curve_files(wildcards).values())
    metrics = [str(Path(p).with_name("metrics.csv")) for p in curves]
    return {"curves": curves, "curve_metrics": metrics, "logs": logs}


def gallery_folders(wildcards):
    """Run → the CAM maps and pseudo masks it builds on (None for full supervision) and its
    predictions."""
    folders, ds = {}, wildcards.dataset
    for run in runs_of(ds):
        base = f"results/{ds}"
        weak = spec_of(run)["supervision"] == "weak"
        masks = mask_source(ds, run) if weak else None
        folders[run] = {
            "cams": f"{base}/{cam_source(ds, masks)}/cam/maps" if weak else None,
            "masks": f"{base}/{masks}/pseudo/masks" if weak else None,
            "predictions": f"{base}/{run}/seg/predictions",
        }
    return folders


def gallery_inputs(wildcards):
    folders = gallery_folders(wildcards).values()
    return {"folders": sorted({f for entry in folders for f in entry.values() if f})}


def experiment_facts(wildcards):
    """Experiment → the config facts the report table spells out (with the CRF preset name of
    CRF-refined pseudo masks)."""
    facts = {}
    for name in dataset_experiments(config, wildcards.dataset):
        spec = dict(EXPERIMENTS[name])
        if spec.get("refine") == "crf":
            spec["crf"] = DATASETS[wildcards.dataset]["pseudo_labels"]["crf"]
        facts[name] = spec
    return facts


def report_files(dataset):
    """The report outputs of one dataset (rule all builds them for default_datasets)."""
    base = f"results/{dataset}/report"
    pngs = ("per_class_iou", "threshold_curves", "loss_curves")
    return [f"{base}/metrics.html", f"{base}/gallery"] + [f"{base}/{name}.png" for name in pngs]
