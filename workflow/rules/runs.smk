# Which jobs stand behind an experiment's numbers, and their resolved params (for its manifest).
from types import SimpleNamespace

from wsss.runs import dataset_runs


def _unique(jobs):
    out = []
    for job in jobs:
        if job not in out:
            out.append(job)
    return out


def cam_jobs(dataset, run):
    """The jobs that make the CAM maps ``run`` refines, in pipeline order."""
    source = cam_source(dataset, run)
    if source != run:
        return cam_jobs(dataset, source)
    spec = spec_of(run)
    jobs = []
    if spec.get("augment") == "cda":
        instances = source_run(config, dataset, run, "instances_from")
        jobs += mask_jobs(dataset, instances) + [(run, "make_instance_bank")]
    if spec.get("cam_method") == "smaf":
        teacher = source_run(config, dataset, run, "teacher")
        jobs += cam_jobs(dataset, teacher) + [(run, "train_self")]
    else:
        jobs.append((run, "train_cam"))
    return _unique(jobs + [(run, "infer_cam")])


def mask_jobs(dataset, run):
    """The jobs that make the pseudo masks ``run`` trains on."""
    source = mask_source(dataset, run)
    if source != run:
        return mask_jobs(dataset, source)
    if spec_of(run)["refine"] == "crf":
        refine = ["make_pseudo_labels"]
    else:
        refine = ["make_affinity_labels", "train_affinity", "random_walk"]
    return _unique(cam_jobs(dataset, run) + [(run, step) for step in refine])


def experiment_jobs(dataset, run):
    """Every job behind the metric rows of ``run``: the jobs making its CAMs and masks (in
    other runs too), its own evaluations, its seg training and evaluation."""
    jobs = []
    if spec_of(run)["supervision"] == "weak":
        jobs += mask_jobs(dataset, run)
        if mask_source(dataset, run) == run:
            if cam_source(dataset, run) == run:
                jobs.append((run, "eval_cam"))
            jobs.append((run, "eval_pseudo_labels"))
    return _unique(jobs + [(run, step) for step in ("train_seg", "infer_seg", "eval_seg")])


def job_spec(rule_name, **wildcards):
    """A job's rule, resolved params, log and outputs, from the rule's own definitions."""
    proxy = getattr(rules, rule_name)
    wc = SimpleNamespace(**wildcards)
    params = {k: v(wc) if callable(v) else v for k, v in proxy.params.items()}
    shard = {"scatteritem": first_shard(rule_name)}  # a sharded rule: its first shard's log
    return {
        "rule": rule_name,
        "params": params,
        "log": str(proxy.log[0]).format(**wildcards, **shard),
        "outputs": [unsharded(str(f)).format(**wildcards) for f in proxy.output],
    }


def provenance_stages(wildcards):
    """``"<experiment>/<rule>"`` → :func:`job_spec` for every job of :func:`experiment_jobs`."""
    return {
        f"{name}/{step}": job_spec(step, dataset=wildcards.dataset, experiment=name)
        for name, step in experiment_jobs(wildcards.dataset, wildcards.experiment)
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


def experiment_metric_files(dataset, run):
    """The metric CSVs of ``run`` (the CAM, pseudo-mask and seg tables it makes)."""
    spec, base = spec_of(run), f"results/{dataset}/{run}"
    files = []
    if spec["supervision"] == "weak" and mask_source(dataset, run) == run:
        if cam_source(dataset, run) == run:
            files.append(f"{base}/cam/eval/metrics.csv")
        files.append(f"{base}/pseudo/eval/metrics.csv")
    return files + [f"{base}/seg/eval/metrics.csv"]


def runs_of(dataset):
    """The runs of the experiments ``dataset`` runs (each experiment at each of its seeds)."""
    return dataset_runs(config, dataset, dataset_experiments(config, dataset))


def experiment_metrics(wildcards):
    """What one dataset's miou.csv gathers, for the experiments it runs
    (datasets.<name>.experiments, default all) at each of their seeds: the metric CSVs."""
    ds = wildcards.dataset
    return [path for run in runs_of(ds) for path in experiment_metric_files(ds, run)]


def experiment_manifests(wildcards):
    ds = wildcards.dataset
    return [f"results/{ds}/{run}/manifest.json" for run in runs_of(ds)]


def run_seeds(wildcards):
    """collect_metrics' map of every run of the dataset → [experiment, seed]."""
    ds = wildcards.dataset
    return {run: list(parse_run(config, ds, run)) for run in runs_of(ds)}


def manifest_metrics(wildcards):
    """record_provenance's inputs: the run's metric CSVs (so it runs last)."""
    return experiment_metric_files(wildcards.dataset, wildcards.experiment)


def dataset_export_entries(wildcards):
    """What export_dataset archives under results/<dataset>/: miou.csv, the dataset index, the
    report figures, the cost table with its benchmark files and the folders of the dataset's
    runs (not the generated dataset tree)."""
    listed = ["miou.csv", "dataset_index.json", "report", "cost.csv", "benchmarks"]
    return listed + runs_of(wildcards.dataset)


def input_folder(wildcards, input):
    """The folder holding a rule's first input (what the export rules archive)."""
    return str(Path(input[0]).parent)
