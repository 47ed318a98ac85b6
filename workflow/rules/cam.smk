# CAM rules: classifier training (and CDA's instance bank, SMAF's self-training), multi-scale +
# flip CAM inference, CAM evaluation.


include: "helpers/cam.smk"


rule train_cam:
    input:
        index=INDEX,
        pretrained=pretrained(cam_settings("model")),
        bank=cda_bank,
        saliency=saliency_input,
    output:
        model=run_path("cam_model"),
        loss_log=run_path("cam_log"),
    log:
        "logs/train_cam/{dataset}/{experiment}.log",
    benchmark:
        benchmark_path("train_cam")
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("cam_method") != "smaf"),
    priority: CAM_CHAIN_PRIORITY
    conda:
        "../../envs/wsss.yaml"
    threads: 1
    resources:
        **rule_resources("train_cam"),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        method=lambda wildcards: PLAN.cam_method(wildcards.experiment),
        model=with_weights(cam_settings("model")),
        train=cam_settings("train"),
        loss=cam_settings("loss"),
        saliency_dir=saliency_dir,
        cda=per_run(PLAN.cda),
        seed=per_run(PLAN.run_seed),
        device=section("device"),
        amp=section("amp"),
        sync_bn=config["distributed"]["sync_bn"],
    script:
        "../scripts/train_cam.py"


rule make_instance_bank:
    input:
        index=INDEX,
        masks=source_file("instances_from", "pseudo_masks"),
    output:
        directory(run_path("cda_bank")),
    log:
        "logs/make_instance_bank/{dataset}/{experiment}.log",
    benchmark:
        benchmark_path("make_instance_bank")
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("augment") == "cda"),
    priority: CAM_CHAIN_PRIORITY
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("make_instance_bank"),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        ratio_range=section("cda", "ratio_range"),
    script:
        "../scripts/make_instance_bank.py"


rule train_smaf:
    input:
        index=INDEX,
        teacher=source_file("teacher", "cam_model"),
        fused=source_file("teacher", "cam_maps"),
        saliency=saliency_input,
    output:
        model=run_path("cam_model"),
        loss_log=run_path("cam_log"),
    log:
        "logs/train_smaf/{dataset}/{experiment}.log",
    benchmark:
        benchmark_path("train_smaf")
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("cam_method") == "smaf"),
    priority: CAM_CHAIN_PRIORITY
    conda:
        "../../envs/wsss.yaml"
    threads: 1
    resources:
        **rule_resources("train_smaf"),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        train=cam_settings("train"),
        loss=cam_settings("loss"),
        saliency_dir=saliency_dir,
        seed=per_run(PLAN.run_seed),
        device=section("device"),
        amp=section("amp"),
        sync_bn=config["distributed"]["sync_bn"],
    script:
        "../scripts/train_smaf.py"


rule infer_cam:
    input:
        index=INDEX,
        model=run_path("cam_model"),
    output:
        directory(sharded_output("infer_cam")),
    log:
        sharded_log("infer_cam", "infer_cam"),
    benchmark:
        sharded_benchmark("infer_cam", "infer_cam")
    priority: CAM_CHAIN_PRIORITY
    conda:
        "../../envs/wsss.yaml"
    threads: 1
    resources:
        **rule_resources("infer_cam"),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        infer=cam_settings("infer"),
        device=section("device"),
        amp=section("amp"),
    script:
        "../scripts/infer_cam.py"


rule eval_cam:
    input:
        index=INDEX,
        cams=run_path("cam_maps"),
    output:
        metrics=run_path("cam_metrics"),
        curve=run_path("cam_curve"),
    log:
        "logs/eval_cam/{dataset}/{experiment}.log",
    benchmark:
        benchmark_path("eval_cam")
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("eval_cam"),
    params:
        root=section("root"),
        split=section("stage_splits", "eval_train"),
        gt_dir=per_dataset(PLAN.split_masks, "eval_train"),
        eval=section("cam", "eval"),
        bg_threshold=per_run(PLAN.cam_bg_threshold, ("cam", "eval")),
    script:
        "../scripts/eval_cam.py"
