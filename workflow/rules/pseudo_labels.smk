# Pseudo-mask rules: background threshold + dense CRF on the CAMs (refine: crf), and the evaluation
# of every experiment's pseudo masks (random-walk masks come from rule random_walk).


rule make_pseudo_labels:
    input:
        index=f"{R}/dataset_index.json",
        cams=cam_file("maps"),
    output:
        directory(sharded("pseudo_labels", f"{X}/pseudo/masks")),
    wildcard_constraints:
        experiment=refined_by("crf"),
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        bg_threshold=cam_bg_threshold(("pseudo_labels",)),
        ignore_disagreement=section("pseudo_labels", "ignore_disagreement"),
        crf=crf_params,
        crf_labels=crf_label_set,
    threads: all_cores
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("make_pseudo_labels")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        sharded_benchmark_file("pseudo_labels", "make_pseudo_labels")
    log:
        sharded_log("pseudo_labels", "logs/make_pseudo_labels/{dataset}/{experiment}.log"),
    script:
        "../scripts/make_pseudo_labels.py"


rule eval_pseudo_labels:
    input:
        index=f"{R}/dataset_index.json",
        masks=f"{X}/pseudo/masks",
    output:
        metrics=f"{X}/pseudo/eval/metrics.csv",
    params:
        root=dataset_root,
        split=section("stage_splits", "eval_train"),
        gt_dir=split_masks("eval_train"),
        bg_threshold=pseudo_bg_threshold,
    resources: **rule_resources("eval_pseudo_labels")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_file("eval_pseudo_labels")
    log:
        "logs/eval_pseudo_labels/{dataset}/{experiment}.log",
    script:
        "../scripts/eval_pseudo_labels.py"
