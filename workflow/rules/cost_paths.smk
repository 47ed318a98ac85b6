# Per-stage cost, paths: every rule that does real work writes a Snakemake benchmark file (wall
# and CPU seconds, peak RSS, I/O) under results/<dataset>/benchmarks/, so a shared result folder
# carries its own cost; collect_cost (cost.smk) tabulates them into results/<dataset>/cost.csv.
# Benchmark files are no rule's input: a result folder made before them is not rerun for lack of
# them.

B = f"{R}/benchmarks"


def benchmark_file(rule_name):
    """``results/{dataset}/benchmarks/{experiment}/<rule>.tsv``."""
    return f"{B}/{{experiment}}/{rule_name}.tsv"


def sharded_benchmark_file(key, rule_name):
    """:func:`benchmark_file`, or ``.../<rule>/{scatteritem}.tsv`` for each shard job."""
    if shard_count(key) == 1:
        return benchmark_file(rule_name)
    return f"{B}/{{experiment}}/{rule_name}/{{scatteritem}}.tsv"


def dataset_benchmark_file(rule_name):
    """A dataset-level job's ``results/{dataset}/benchmarks/_dataset/<rule>.tsv``."""
    return f"{B}/_dataset/{rule_name}.tsv"


def generation_benchmark_file(rule_name):
    """Rules that write a dataset tree know only its root: ``benchmarks/<rule>/<root>.tsv``
    (collect_cost files them under the dataset whose root it is)."""
    return f"benchmarks/{rule_name}/{{root}}.tsv"


def generation_benchmarks(wildcards):
    """Rule → benchmark file of the job that generated this dataset's tree, if a rule did."""
    root = DATASETS[wildcards.dataset]["root"]
    made = {"make_synthetic_voc": SYNTHETIC_ROOTS, "convert_coco": COCO_ROOTS}
    return {
        rule_name: generation_benchmark_file(rule_name).format(root=root)
        for rule_name, roots in made.items()
        if root in roots
    }
