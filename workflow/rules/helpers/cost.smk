# Input and params functions of the rules in cost.smk (only there).


def generation_benchmarks(wildcards):
    """Rule → benchmark file of the job that generated this dataset's tree, if a rule did."""
    root = DATASETS[wildcards.dataset]["root"]
    made = {"make_synthetic_voc": SYNTHETIC_ROOTS, "convert_coco": COCO_ROOTS}
    return {
        rule_name: generation_benchmark_file(rule_name).format(root=root)
        for rule_name, roots in made.items()
        if root in roots
    }
