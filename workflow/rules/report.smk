# Report rules: one table of every number, with its stage, split and threshold spelled out, and
# the figures of `snakemake --report results/<dataset>/report.html` (report() outputs).


include: "helpers/report.smk"


rule collect_metrics:
    input:
        metrics=per_dataset(PLAN.dataset_metric_files),
        manifests=per_dataset(PLAN.manifests),
    output:
        report(
            dataset_path("miou"),
            caption="../report/miou.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "miou.csv"},
        ),
    params:
        classes=section("classes"),
        runs=per_dataset(PLAN.run_seeds),
    resources: **rule_resources("collect_metrics")
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/collect_metrics/{dataset}.log",
    script:
        "../scripts/collect_metrics.py"


rule report_table:
    input:
        dataset_path("miou"),
    output:
        report(
            f"{REPORT}/metrics.html",
            caption="../report/metrics.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "what each number is"},
        ),
    params:
        classes=section("classes"),
        experiments=per_dataset(PLAN.experiment_facts),
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
        miou=dataset_path("miou"),
    output:
        per_class=report(
            f"{REPORT}/per_class_iou.png",
            caption="../report/per_class_iou.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "per-class IoU"},
        ),
        thresholds=report(
            f"{REPORT}/threshold_curves.png",
            caption="../report/threshold_curves.rst",
            category="Curves",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "background threshold"},
        ),
        losses=report(
            f"{REPORT}/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Curves",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "training loss"},
        ),
    params:
        classes=section("classes"),
        curves=per_dataset(PLAN.curve_files),
        logs=per_dataset(PLAN.loss_logs),
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
        index=INDEX,
    output:
        report(
            directory(f"{REPORT}/gallery"),
            patterns=["{run}.png"],
            caption="../report/gallery.rst",
            category="Gallery",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "experiment": "{run}"},
        ),
    params:
        root=section("root"),
        runs=per_dataset(PLAN.gallery_folders),
        train_split=section("stage_splits", "eval_train"),
        train_gt=per_dataset(PLAN.split_masks, "eval_train"),
        val_split=section("stage_splits", "eval_val"),
        val_gt=per_dataset(PLAN.split_masks, "eval_val"),
        images=config["report"]["gallery_images"],
    resources: **rule_resources("plot_gallery")
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/plot_gallery/{dataset}.log",
    script:
        "../scripts/plot_gallery.py"
