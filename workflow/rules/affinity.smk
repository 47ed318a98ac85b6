# Affinity refinement (refine: affinitynet | irn): confident-region labels from the CAMs, the
# affinity / boundary network trained on them, and the random walk that writes the pseudo masks.


include: "helpers/affinity.smk"


rule make_affinity_labels:
    input:
        index=INDEX,
        cams=source_file(None, "cam_maps"),
    output:
        directory(run_path("affinity_labels")),
    log:
        "logs/make_affinity_labels/{dataset}/{experiment}.log",
    benchmark:
        benchmark_path("make_affinity_labels")
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("refine") in ("affinitynet", "irn")),
    priority: CAM_CHAIN_PRIORITY
    conda:
        "../../envs/wsss.yaml"
    threads: all_cores
    resources:
        **rule_resources("make_affinity_labels"),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        method=lambda wildcards: PLAN.spec(wildcards.experiment)["refine"],
        labels=affinity_section("labels"),
        crf=per_run(PLAN.affinity_crf_preset),
    script:
        "../scripts/make_affinity_labels.py"


rule train_affinity:
    input:
        unpack(affinity_inputs),
        index=INDEX,
        labels=run_path("affinity_labels"),
    output:
        model=run_path("affinity_model"),
        loss_log=run_path("affinity_log"),
    log:
        "logs/train_affinity/{dataset}/{experiment}.log",
    benchmark:
        benchmark_path("train_affinity")
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("refine") in ("affinitynet", "irn")),
    priority: CAM_CHAIN_PRIORITY
    conda:
        "../../envs/wsss.yaml"
    threads: training_cores("train_affinity", affinity_section("train"))
    resources:
        **rule_resources("train_affinity"),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        method=lambda wildcards: PLAN.spec(wildcards.experiment)["refine"],
        model=with_weights(affinity_section("model")),
        train=affinity_section("train"),
        radius=affinity_section("radius"),
        seed=per_run(PLAN.run_seed),
        device=section("device"),
        amp=section("amp"),
        sync_bn=config["distributed"]["sync_bn"],
    script:
        "../scripts/train_affinity.py"


rule random_walk:
    input:
        index=INDEX,
        cams=source_file(None, "cam_maps"),
        model=run_path("affinity_model"),
    output:
        directory(sharded_output("pseudo_labels")),
    log:
        sharded_log("pseudo_labels", "random_walk"),
    benchmark:
        sharded_benchmark("pseudo_labels", "random_walk")
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("refine") in ("affinitynet", "irn")),
    priority: CAM_CHAIN_PRIORITY
    conda:
        "../../envs/wsss.yaml"
    threads: all_cores
    resources:
        **rule_resources("random_walk"),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        method=lambda wildcards: PLAN.spec(wildcards.experiment)["refine"],
        walk=affinity_section("walk"),
        device=section("device"),
        amp=section("amp"),
    script:
        "../scripts/random_walk.py"
