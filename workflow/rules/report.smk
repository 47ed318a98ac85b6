# Report rules: one table of every number, with its stage, split and threshold spelled out.


rule collect_metrics:
    input:
        metrics=experiment_metrics,
        manifests=experiment_manifests,
    output:
        "results/{dataset}/miou.csv",
    params:
        classes=section("classes"),
        runs=run_seeds,
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/collect_metrics/{dataset}.log",
    script:
        "../scripts/collect_metrics.py"
