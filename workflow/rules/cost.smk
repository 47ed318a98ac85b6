# Per-stage cost table: results/<dataset>/cost.csv from the benchmark files (paths: cost_paths.smk).

rule collect_cost:
    input:
        # After every job of the dataset's runs (miou.csv needs them all); the benchmark files
        # themselves are read from the folder, not required.
        f"{R}/miou.csv",
    output:
        report(
            f"{R}/cost.csv",
            caption="../report/cost.rst",
            category="Cost",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "cost.csv"},
        ),
    params:
        benchmarks=lambda wildcards: B.format(dataset=wildcards.dataset),
        generation=generation_benchmarks,
    resources: **rule_resources("collect_cost")
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/collect_cost/{dataset}.log",
    script:
        "../scripts/collect_cost.py"
