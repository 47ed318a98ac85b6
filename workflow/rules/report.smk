# Report rules: one table of every number, with its stage, split and threshold spelled out, and
# the figures of `snakemake --report results/<dataset>/report.html` (report() outputs).


rule collect_metrics:
    input:
        metrics=experiment_metrics,
        manifests=experiment_manifests,
    output:
        report(
            "results/{dataset}/miou.csv",
            caption="../report/miou.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "miou.csv"},
        ),
    params:
        classes=section("classes"),
        runs=run_seeds,
    resources: **rule_resources("collect_metrics")
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/collect_metrics/{dataset}.log",
    script:
        "../scripts/collect_metrics.py"


rule report_table:
    input:
        f"{R}/miou.csv",
    output:
        report(
            f"{R}/report/metrics.html",
            caption="../report/metrics.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "what each number is"},
        ),
    params:
        classes=section("classes"),
        experiments=experiment_facts,
        splits=section("splits"),
    resources: **rule_resources("report_table")
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/report_table/{dataset}.log",
    script:
        "../scripts/report_table.py"


rule plot_curves:
    input:
        unpack(curve_inputs),
        miou=f"{R}/miou.csv",
    output:
        per_class=report(
            f"{R}/report/per_class_iou.png",
            caption="../report/per_class_iou.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "per-class IoU"},
        ),
        thresholds=report(
            f"{R}/report/threshold_curves.png",
            caption="../report/threshold_curves.rst",
            category="Curves",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "background threshold"},
        ),
        losses=report(
            f"{R}/report/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Curves",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "training loss"},
        ),
    params:
        classes=section("classes"),
        curves=curve_files,
        logs=loss_logs,
    resources: **rule_resources("plot_curves")
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/plot_curves/{dataset}.log",
    script:
        "../scripts/plot_curves.py"


rule plot_gallery:
    input:
        unpack(gallery_inputs),
        index=f"{R}/dataset_index.json",
    output:
        report(
            directory(f"{R}/report/gallery"),
            patterns=["{run}.png"],
            caption="../report/gallery.rst",
            category="Gallery",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "experiment": "{run}"},
        ),
    params:
        root=dataset_root,
        runs=gallery_folders,
        train_split=section("stage_splits", "eval_train"),
        train_gt=split_masks("eval_train"),
        val_split=section("stage_splits", "eval_val"),
        val_gt=split_masks("eval_val"),
        images=config["report"]["gallery_images"],
    resources: **rule_resources("plot_gallery")
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/plot_gallery/{dataset}.log",
    script:
        "../scripts/plot_gallery.py"
