# Segmentation rules: retraining on pseudo masks (or ground truth for the oracle), prediction, evaluation.


include: "helpers/segmentation.smk"


rule train_seg:
    input:
        index=INDEX,
        masks=lambda wildcards: PLAN.seg_masks(wildcards.dataset, wildcards.experiment) or [],
        pretrained=pretrained(per_run(PLAN.seg_model)),
    output:
        model=run_path("seg_model"),
        loss_log=run_path("seg_log"),
    log:
        "logs/train_seg/{dataset}/{experiment}.log",
    benchmark:
        benchmark_path("train_seg")
    priority: lambda wildcards: PLAN.seg_train_priority(wildcards.experiment)
    conda:
        "../../envs/wsss.yaml"
    threads: seg_train_threads
    resources:
        **rule_resources("train_seg"),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        gt_dir=per_dataset(PLAN.split_masks, "train"),
        model_name=lambda wildcards: PLAN.spec(wildcards.experiment)["seg_model"],
        model=with_weights(per_run(PLAN.seg_model)),
        train=per_run(PLAN.seg_settings, "train"),
        seed=per_run(PLAN.run_seed),
        device=section("device"),
        amp=section("amp"),
        sync_bn=config["distributed"]["sync_bn"],
    script:
        "../scripts/train_seg.py"


rule infer_seg:
    input:
        index=INDEX,
        model=run_path("seg_model"),
    output:
        directory(sharded_output("infer_seg")),
    log:
        sharded_log("infer_seg", "infer_seg"),
    benchmark:
        sharded_benchmark("infer_seg", "infer_seg")
    conda:
        "../../envs/wsss.yaml"
    threads: 1
    resources:
        **rule_resources("infer_seg"),
    params:
        root=section("root"),
        split=section("stage_splits", "eval_val"),
        infer=per_run(PLAN.seg_settings, "infer"),
        device=section("device"),
        amp=section("amp"),
    script:
        "../scripts/infer_seg.py"


rule eval_seg:
    input:
        index=INDEX,
        predictions=run_path("seg_predictions"),
    output:
        metrics=run_path("seg_metrics"),
    log:
        "logs/eval_seg/{dataset}/{experiment}.log",
    benchmark:
        benchmark_path("eval_seg")
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("eval_seg"),
    params:
        root=section("root"),
        split=section("stage_splits", "eval_val"),
        gt_dir=per_dataset(PLAN.split_masks, "eval_val"),
    script:
        "../scripts/eval_seg.py"
