# CAM rules: classifier training (and CDA's instance bank, SMAF's self-training), multi-scale +
# flip CAM inference, CAM evaluation.


rule train_cam:
    input:
        index=f"{R}/dataset_index.json",
        pretrained=pretrained("cam"),
        bank=cda_bank,
        saliency=saliency_input,
    output:
        model=f"{X}/cam/model.pt",
        loss_log=f"{X}/cam/train_log.csv",
    wildcard_constraints:
        experiment=experiments_where(lambda spec: spec.get("cam_method") != "smaf"),
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        method=lambda wildcards: cam_method(wildcards.experiment),
        model=with_weights(cam_config("model")),
        train=cam_config("train"),
        loss=cam_config("loss"),
        saliency_dir=saliency_dir,
        cda=cda_settings,
        seed=run_seed,
        device=section("device"),
        sync_bn=config["distributed"]["sync_bn"],
    threads: 1
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("train_cam")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_file("train_cam")
    log:
        "logs/train_cam/{dataset}/{experiment}.log",
    script:
        "../scripts/train_cam.py"


rule make_instance_bank:
    input:
        index=f"{R}/dataset_index.json",
        masks=source_file("instances_from", "pseudo/masks"),
    output:
        directory(f"{X}/cda/bank"),
    wildcard_constraints:
        experiment=experiments_where(lambda spec: spec.get("augment") == "cda"),
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        ratio_range=section("cda", "ratio_range"),
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("make_instance_bank")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_file("make_instance_bank")
    log:
        "logs/make_instance_bank/{dataset}/{experiment}.log",
    script:
        "../scripts/make_instance_bank.py"


rule train_self:
    input:
        index=f"{R}/dataset_index.json",
        teacher=source_file("teacher", "cam/model.pt"),
        fused=source_file("teacher", "cam/maps"),
        saliency=saliency_input,
    output:
        model=f"{X}/cam/model.pt",
        loss_log=f"{X}/cam/train_log.csv",
    wildcard_constraints:
        experiment=experiments_where(lambda spec: spec.get("cam_method") == "smaf"),
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        train=cam_config("train"),
        loss=cam_config("loss"),
        saliency_dir=saliency_dir,
        seed=run_seed,
        device=section("device"),
        sync_bn=config["distributed"]["sync_bn"],
    threads: 1
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("train_self")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_file("train_self")
    log:
        "logs/train_self/{dataset}/{experiment}.log",
    script:
        "../scripts/train_self.py"


rule infer_cam:
    input:
        index=f"{R}/dataset_index.json",
        model=f"{X}/cam/model.pt",
    output:
        directory(sharded("infer_cam", f"{X}/cam/maps")),
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        infer=cam_config("infer"),
        device=section("device"),
    threads: 1
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("infer_cam")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        sharded_benchmark_file("infer_cam", "infer_cam")
    log:
        sharded_log("infer_cam", "logs/infer_cam/{dataset}/{experiment}.log"),
    script:
        "../scripts/infer_cam.py"


rule eval_cam:
    input:
        index=f"{R}/dataset_index.json",
        cams=f"{X}/cam/maps",
    output:
        metrics=f"{X}/cam/eval/metrics.csv",
        curve=f"{X}/cam/eval/threshold_curve.csv",
    params:
        root=dataset_root,
        split=section("stage_splits", "eval_train"),
        gt_dir=split_masks("eval_train"),
        eval=section("cam", "eval"),
        bg_threshold=cam_bg_threshold(("cam", "eval")),
    resources: **rule_resources("eval_cam")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_file("eval_cam")
    log:
        "logs/eval_cam/{dataset}/{experiment}.log",
    script:
        "../scripts/eval_cam.py"
