# Which jobs stand behind an experiment's numbers, and their resolved params (for its manifest).
from types import SimpleNamespace


def _unique(jobs):
    out = []
    for job in jobs:
        if job not in out:
            out.append(job)
    return out


def cam_jobs(name):
    """The jobs that make the CAM maps experiment ``name`` refines, in pipeline order."""
    source = cam_source(name)
    if source != name:
        return cam_jobs(source)
    spec = EXPERIMENTS[name]
    jobs = []
    if spec.get("augment") == "cda":
        jobs += mask_jobs(spec["instances_from"]) + [(name, "make_instance_bank")]
    if spec.get("cam_method") == "smaf":
        jobs += cam_jobs(spec["teacher"]) + [(name, "train_self")]
    else:
        jobs.append((name, "train_cam"))
    return _unique(jobs + [(name, "infer_cam")])


def mask_jobs(name):
    """The jobs that make the pseudo masks experiment ``name`` trains on."""
    source = mask_source(name)
    if source != name:
        return mask_jobs(source)
    if EXPERIMENTS[name]["refine"] == "crf":
        refine = ["make_pseudo_labels"]
    else:
        refine = ["make_affinity_labels", "train_affinity", "random_walk"]
    return _unique(cam_jobs(name) + [(name, step) for step in refine])


def experiment_jobs(name):
    """Every job behind the metric rows of experiment ``name``: the jobs making its CAMs and
    masks (in other experiments too), its own evaluations, its seg training and evaluation."""
    jobs = []
    if EXPERIMENTS[name]["supervision"] == "weak":
        jobs += mask_jobs(name)
        if mask_source(name) == name:
            if cam_source(name) == name:
                jobs.append((name, "eval_cam"))
            jobs.append((name, "eval_pseudo_labels"))
    return _unique(jobs + [(name, step) for step in ("train_seg", "infer_seg", "eval_seg")])


def job_spec(rule_name, **wildcards):
    """A job's rule, resolved params, log and outputs, from the rule's own definitions."""
    proxy = getattr(rules, rule_name)
    wc = SimpleNamespace(**wildcards)
    params = {k: v(wc) if callable(v) else v for k, v in proxy.params.items()}
    return {
        "rule": rule_name,
        "params": params,
        "log": str(proxy.log[0]).format(**wildcards),
        "outputs": [str(f).format(**wildcards) for f in proxy.output],
    }


def provenance_stages(wildcards):
    """``"<experiment>/<rule>"`` → :func:`job_spec` for every job of :func:`experiment_jobs`."""
    return {
        f"{name}/{step}": job_spec(step, dataset=wildcards.dataset, experiment=name)
        for name, step in experiment_jobs(wildcards.experiment)
    }


def provenance_dataset_stages(wildcards):
    """:func:`job_spec` of the dataset's generation (synthetic) or conversion (COCO) and check
    jobs."""
    spec = DATASETS[wildcards.dataset]
    stages = {}
    if "synthetic" in spec:
        stages["make_synthetic_voc"] = job_spec("make_synthetic_voc", root=spec["root"])
    if "coco" in spec:
        stages["convert_coco"] = job_spec("convert_coco", root=spec["root"])
    stages["check_dataset"] = job_spec("check_dataset", dataset=wildcards.dataset)
    return stages


def experiment_metric_files(dataset, name):
    """The metric CSVs of experiment ``name`` (CAM, pseudo-mask and seg tables it makes)."""
    spec, base = EXPERIMENTS[name], f"results/{dataset}/{name}"
    files = []
    if spec["supervision"] == "weak" and mask_source(name) == name:
        if cam_source(name) == name:
            files.append(f"{base}/cam/eval/metrics.csv")
        files.append(f"{base}/pseudo/eval/metrics.csv")
    return files + [f"{base}/seg/eval/metrics.csv"]


def experiment_metrics(wildcards):
    """What one dataset's miou.csv gathers, for the experiments it runs
    (datasets.<name>.experiments, default all): their metric CSVs and manifests."""
    files = []
    for name in dataset_experiments(config, wildcards.dataset):
        files += experiment_metric_files(wildcards.dataset, name)
    return files


def experiment_manifests(wildcards):
    return [
        f"results/{wildcards.dataset}/{name}/manifest.json"
        for name in dataset_experiments(config, wildcards.dataset)
    ]


def manifest_metrics(wildcards):
    """record_provenance's inputs: the experiment's metric CSVs (so it runs last)."""
    return experiment_metric_files(wildcards.dataset, wildcards.experiment)


def dataset_export_entries(wildcards):
    """What export_dataset archives under results/<dataset>/: miou.csv, the dataset index and
    the folders of the experiments the dataset runs (not the generated dataset tree)."""
    return ["miou.csv", "dataset_index.json"] + dataset_experiments(config, wildcards.dataset)


def input_folder(wildcards, input):
    """The folder holding a rule's first input (what the export rules archive)."""
    return str(Path(input[0]).parent)
