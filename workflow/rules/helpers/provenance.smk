# Input and params functions of the rules in provenance.smk (only there).

from types import SimpleNamespace

from wsss.workflow.runs import run_experiment


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
    """``"<run>/<rule>"`` → :func:`job_spec` for every job behind the run's numbers
    (Plan.jobs)."""
    return {
        f"{name}/{step}": job_spec(step, dataset=wildcards.dataset, experiment=name)
        for name, step in PLAN.jobs(wildcards.dataset, wildcards.experiment)
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
