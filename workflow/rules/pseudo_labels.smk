# Pseudo-mask rules: background threshold + dense CRF on the CAMs (refine: crf), and the evaluation
# of every experiment's pseudo masks (random-walk masks come from rule random_walk).


rule make_pseudo_labels:
    input:
        index=INDEX,
        cams=source_file(None, "cam_maps"),
    output:
        directory(sharded_output("pseudo_labels")),
    log:
        sharded_log("pseudo_labels", "make_pseudo_labels"),
    benchmark:
        sharded_benchmark("pseudo_labels", "make_pseudo_labels")
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("refine") == "crf"),
    priority: CAM_CHAIN_PRIORITY
    conda:
        "../../envs/wsss.yaml"
    threads: all_cores
    resources:
        **rule_resources("make_pseudo_labels"),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        bg_threshold=per_run(PLAN.cam_bg_threshold, ("pseudo_labels",)),
        ignore_disagreement=section("pseudo_labels", "ignore_disagreement"),
        crf=per_dataset(PLAN.crf_preset),
        crf_labels=per_run(PLAN.crf_labels),
    script:
        "../scripts/make_pseudo_labels.py"


rule eval_pseudo_labels:
    input:
        index=INDEX,
        masks=run_path("pseudo_masks"),
    output:
        metrics=run_path("pseudo_metrics"),
    log:
        "logs/eval_pseudo_labels/{dataset}/{experiment}.log",
    benchmark:
        benchmark_path("eval_pseudo_labels")
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("eval_pseudo_labels"),
    params:
        root=section("root"),
        split=section("stage_splits", "eval_train"),
        gt_dir=per_dataset(PLAN.split_masks, "eval_train"),
        bg_threshold=per_run(PLAN.pseudo_bg_threshold),
    script:
        "../scripts/eval_pseudo_labels.py"
