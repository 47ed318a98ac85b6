# Per-stage cost: every rule that does real work writes a Snakemake benchmark file (wall and CPU
# seconds, peak RSS, I/O) under results/<dataset>/benchmarks/ (wsss.workflow.paths.benchmark_path),
# so a shared result folder carries its own cost; collect_cost tabulates them into
# results/<dataset>/cost.csv. Benchmark files are no rule's input: a result folder made before them
# is not rerun for lack of them.


include: "helpers/cost.smk"


rule collect_cost:
    input:
        # After every job of the dataset's runs (miou.csv needs them all); the benchmark files
        # themselves are read from the folder, not required.
        dataset_path("miou"),
    output:
        report(
            dataset_path("cost"),
            caption="../report/cost.rst",
            category="Cost",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "cost.csv"},
        ),
    log:
        "logs/collect_cost/{dataset}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("collect_cost"),
    params:
        benchmarks=lambda wildcards: dataset_path("benchmarks", wildcards.dataset),
        generation=generation_benchmarks,
    script:
        "../scripts/collect_cost.py"
