# CAM rules: classifier training, multi-scale + flip CAM inference, CAM evaluation.


rule train_cam:
    input:
        index=f"{R}/dataset_index.json",
        pretrained=pretrained("cam"),
    output:
        model=f"{X}/cam/model.pt",
        loss_log=f"{X}/cam/train_log.csv",
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        method=lambda wildcards: cam_method(wildcards.experiment),
        model=cam_config("model"),
        train=cam_config("train"),
        loss=cam_config("loss"),
        seed=section("seed"),
        device=section("device"),
    threads: 1
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/train_cam/{dataset}/{experiment}.log",
    script:
        "../scripts/train_cam.py"


rule infer_cam:
    input:
        index=f"{R}/dataset_index.json",
        model=f"{X}/cam/model.pt",
    output:
        directory(f"{X}/cam/maps"),
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        infer=cam_config("infer"),
        device=section("device"),
    threads: 1
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/infer_cam/{dataset}/{experiment}.log",
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
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/eval_cam/{dataset}/{experiment}.log",
    script:
        "../scripts/eval_cam.py"
