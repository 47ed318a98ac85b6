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
    log:
        "logs/collect_metrics/{dataset}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("collect_metrics"),
    params:
        classes=section("classes"),
        runs=per_dataset(PLAN.run_seeds),
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
    log:
        "logs/report_table/{dataset}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("report_table"),
    params:
        classes=section("classes"),
        experiments=per_dataset(PLAN.experiment_facts),
        splits=section("splits"),
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
    log:
        "logs/plot_curves/{dataset}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("plot_curves"),
    params:
        classes=section("classes"),
        curves=per_dataset(PLAN.curve_files),
        logs=per_dataset(PLAN.loss_logs),
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
    log:
        "logs/plot_gallery/{dataset}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("plot_gallery"),
    params:
        root=section("root"),
        runs=per_dataset(PLAN.gallery_folders),
        train_split=section("stage_splits", "eval_train"),
        train_gt=per_dataset(PLAN.split_masks, "eval_train"),
        val_split=section("stage_splits", "eval_val"),
        val_gt=per_dataset(PLAN.split_masks, "eval_val"),
        images=config["report"]["gallery_images"],
    script:
        "../scripts/plot_gallery.py"
