# Affinity refinement (refine: affinitynet | irn): confident-region labels from the CAMs, the
# affinity / boundary network trained on them, and the random walk that writes the pseudo masks.


include: "helpers/affinity.smk"


rule make_affinity_labels:
    input:
        index=INDEX,
        cams=source_file(None, "cam_maps"),
    output:
        directory(run_path("affinity_labels")),
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("refine") in ("affinitynet", "irn")),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        method=lambda wildcards: PLAN.spec(wildcards.experiment)["refine"],
        labels=affinity_section("labels"),
        crf=per_run(PLAN.affinity_crf_preset),
    threads: all_cores
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("make_affinity_labels")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_path("make_affinity_labels")
    log:
        "logs/make_affinity_labels/{dataset}/{experiment}.log",
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
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("refine") in ("affinitynet", "irn")),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        method=lambda wildcards: PLAN.spec(wildcards.experiment)["refine"],
        model=with_weights(affinity_section("model")),
        train=affinity_section("train"),
        radius=affinity_section("radius"),
        seed=per_run(PLAN.run_seed),
        device=section("device"),
        sync_bn=config["distributed"]["sync_bn"],
    threads: training_cores("train_affinity", affinity_section("train"))
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("train_affinity")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_path("train_affinity")
    log:
        "logs/train_affinity/{dataset}/{experiment}.log",
    script:
        "../scripts/train_affinity.py"


rule random_walk:
    input:
        index=INDEX,
        cams=source_file(None, "cam_maps"),
        model=run_path("affinity_model"),
    output:
        directory(sharded_output("pseudo_labels")),
    wildcard_constraints:
        experiment=PLAN.run_pattern(lambda spec: spec.get("refine") in ("affinitynet", "irn")),
    params:
        root=section("root"),
        split=section("stage_splits", "train"),
        method=lambda wildcards: PLAN.spec(wildcards.experiment)["refine"],
        walk=affinity_section("walk"),
        device=section("device"),
    threads: all_cores
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("random_walk")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        sharded_benchmark("pseudo_labels", "random_walk")
    log:
        sharded_log("pseudo_labels", "random_walk"),
    script:
        "../scripts/random_walk.py"
