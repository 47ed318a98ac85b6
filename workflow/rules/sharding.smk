# Sharded per-image stages (config `shards`, or --set-scatter infer_cam=8 ...): with K > 1,
# infer_cam, make_pseudo_labels / random_walk and infer_seg run as K jobs, one per slice of the
# sorted ids, into results/<dataset>/shards/<experiment>/<folder>/<k>-of-<K>, and a merge_shards_*
# job hard-links them into the folder downstream rules read. K = 1: one job, no merge.
from wsss.workflow.paths import shard_path


scattergather:
    infer_cam=config["shards"]["infer_cam"],
    pseudo_labels=config["shards"]["pseudo_labels"],
    infer_seg=config["shards"]["infer_seg"],


SHARD_KEYS = {  # rule → its scattergather key
    "infer_cam": "infer_cam",
    "make_pseudo_labels": "pseudo_labels",
    "random_walk": "pseudo_labels",
    "infer_seg": "infer_seg",
}
SHARDED_ARTIFACTS = {  # scattergather key → the per-image folder its jobs write
    "infer_cam": "cam_maps",
    "pseudo_labels": "pseudo_masks",
    "infer_seg": "seg_predictions",
}


def shard_count(key):
    """K of a scattergather key (config `shards`, overridden by --set-scatter)."""
    return len(getattr(scatter, key)("{scatteritem}"))


def sharded_output(key):
    """The per-image folder of ``key`` as the output of one job: the run's folder for K = 1,
    else its shard folder (wsss.workflow.paths.shard_path)."""
    artifact = SHARDED_ARTIFACTS[key]
    return run_path(artifact) if shard_count(key) == 1 else shard_path(artifact)


def sharded_log(key, rule_name):
    """``logs/<rule>/{dataset}/{experiment}.log``, or ``.../{experiment}/{scatteritem}.log``."""
    log = f"logs/{rule_name}/{{dataset}}/{{experiment}}"
    return f"{log}.log" if shard_count(key) == 1 else f"{log}/{{scatteritem}}.log"


def sharded_benchmark(key, rule_name):
    """:func:`benchmark_path`, or ``.../<rule>/{scatteritem}.tsv`` for each shard job."""
    if shard_count(key) == 1:
        return benchmark_path(rule_name)
    return benchmark_path(f"{rule_name}/{{scatteritem}}")


def unsharded(path):
    """The merged folder of a shard folder pattern (the inverse of :func:`sharded_output`)."""
    if Path(path).name != "{scatteritem}":
        return path
    for artifact in SHARDED_ARTIFACTS.values():
        if path == shard_path(artifact):
            return run_path(artifact)
    raise ValueError(f"{path}: no sharded artifact")


def first_shard(rule_name):
    """The scatter item of a rule's first shard job ("1-of-K"; "1-of-1" when unsharded)."""
    key = SHARD_KEYS.get(rule_name)
    return f"1-of-{shard_count(key) if key else 1}"


def shard_folders(key):
    """A merge rule's inputs: the K shard folders of ``key``'s artifact."""
    pattern = shard_path(SHARDED_ARTIFACTS[key])
    return lambda wc: getattr(gather, key)(pattern, dataset=wc.dataset, experiment=wc.experiment)


for _key, _artifact in SHARDED_ARTIFACTS.items():
    if shard_count(_key) > 1:

        rule:
            name:
                f"merge_shards_{_key}"
            input:
                shard_folders(_key),
            output:
                directory(run_path(_artifact)),
            log:
                f"logs/merge_shards_{_key}/{{dataset}}/{{experiment}}.log",
            localrule: True  # hard links only: no cluster job for it
            conda:
                "../../envs/wsss.yaml"
            threads: 1
            script:
                "../scripts/merge_shards.py"
