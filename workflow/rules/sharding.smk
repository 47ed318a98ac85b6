# Sharded per-image stages (config `shards`, or --set-scatter infer_cam=8 ...): with K > 1,
# infer_cam, make_pseudo_labels / random_walk and infer_seg run as K jobs, one per slice of the
# sorted ids, into results/<dataset>/shards/<experiment>/<folder>/<k>-of-<K>, and a gather rule
# merges them (hard links) into the folder downstream rules read. K = 1: today's rules and DAG.


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


def shard_count(key):
    """K of a scattergather key (config `shards`, overridden by --set-scatter)."""
    return len(getattr(scatter, key)("{scatteritem}"))


def sharded(key, path):
    """A per-image folder ``results/{dataset}/{experiment}/<folder>`` as the output of one
    shard job: itself for K = 1, else ``results/{dataset}/shards/{experiment}/<folder>/
    {scatteritem}`` (outside the experiment folder: not archived twice by export)."""
    if shard_count(key) == 1:
        return path
    return f"{path.replace(f'{X}/', f'{R}/shards/{{experiment}}/')}/{{scatteritem}}"


def sharded_log(key, path):
    """A rule's ``<name>.log`` for K = 1, else ``<name>/{scatteritem}.log``."""
    return path if shard_count(key) == 1 else f"{path.removesuffix('.log')}/{{scatteritem}}.log"


def unsharded(path):
    """The merged folder of a shard folder pattern (the inverse of :func:`sharded`)."""
    if Path(path).name != "{scatteritem}":
        return path
    return str(Path(path).parent).replace(f"{R}/shards/{{experiment}}/", f"{X}/")


def first_shard(rule_name):
    """The scatter item of a rule's first shard job ("1-of-K"; "1-of-1" when unsharded)."""
    key = SHARD_KEYS.get(rule_name)
    return f"1-of-{shard_count(key) if key else 1}"


def shard_folders(key, path):
    """A gather rule's inputs: the K shard folders of ``path`` (see :func:`sharded`)."""
    pattern = sharded(key, path)
    return lambda wc: getattr(gather, key)(pattern, dataset=wc.dataset, experiment=wc.experiment)


for _key, _folder in [
    ("infer_cam", "cam/maps"),
    ("pseudo_labels", "pseudo/masks"),
    ("infer_seg", "seg/predictions"),
]:
    if shard_count(_key) > 1:

        rule:
            name:
                f"gather_{_key}"
            input:
                shard_folders(_key, f"{X}/{_folder}"),
            output:
                directory(f"{X}/{_folder}"),
            localrule: True  # hard links only: no cluster job for it
            threads: 1
            conda:
                "../../envs/wsss.yaml"
            log:
                f"logs/gather_{_key}/{{dataset}}/{{experiment}}.log",
            script:
                "../scripts/merge_shards.py"
