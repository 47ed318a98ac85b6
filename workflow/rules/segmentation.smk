# Segmentation rules: retraining on pseudo masks (or ground truth for the oracle), prediction, evaluation.


rule train_seg:
    input:
        index=f"{R}/dataset_index.json",
        masks=seg_masks,
        pretrained=pretrained("seg"),
    output:
        model=f"{X}/seg/model.pt",
        loss_log=f"{X}/seg/train_log.csv",
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        gt_dir=split_masks("train"),
        model_name=experiment_value("seg_model"),
        model=with_weights(seg_model_config),
        train=seg_section("train"),
        seed=run_seed,
        device=section("device"),
        sync_bn=config["distributed"]["sync_bn"],
    threads: seg_train_threads
    priority: seg_train_priority
    resources: **rule_resources("train_seg")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_file("train_seg")
    log:
        "logs/train_seg/{dataset}/{experiment}.log",
    script:
        "../scripts/train_seg.py"


rule infer_seg:
    input:
        index=f"{R}/dataset_index.json",
        model=f"{X}/seg/model.pt",
    output:
        directory(sharded("infer_seg", f"{X}/seg/predictions")),
    params:
        root=dataset_root,
        split=section("stage_splits", "eval_val"),
        infer=seg_section("infer"),
        device=section("device"),
    threads: 1
    resources: **rule_resources("infer_seg")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        sharded_benchmark_file("infer_seg", "infer_seg")
    log:
        sharded_log("infer_seg", "logs/infer_seg/{dataset}/{experiment}.log"),
    script:
        "../scripts/infer_seg.py"


rule eval_seg:
    input:
        index=f"{R}/dataset_index.json",
        predictions=f"{X}/seg/predictions",
    output:
        metrics=f"{X}/seg/eval/metrics.csv",
    params:
        root=dataset_root,
        split=section("stage_splits", "eval_val"),
        gt_dir=split_masks("eval_val"),
    resources: **rule_resources("eval_seg")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_file("eval_seg")
    log:
        "logs/eval_seg/{dataset}/{experiment}.log",
    script:
        "../scripts/eval_seg.py"
