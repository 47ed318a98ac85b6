# Affinity refinement (refine: affinitynet | irn): confident-region labels from the CAMs, the
# affinity / boundary network trained on them, and the random walk that writes the pseudo masks.


rule make_affinity_labels:
    input:
        index=f"{R}/dataset_index.json",
        cams=cam_file("maps"),
    output:
        directory(f"{X}/affinity/labels"),
    wildcard_constraints:
        experiment=refined_by("affinitynet", "irn"),
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        method=experiment_value("refine"),
        labels=affinity_section("labels"),
        crf=affinity_crf_params,
    threads: all_cores
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("make_affinity_labels")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_file("make_affinity_labels")
    log:
        "logs/make_affinity_labels/{dataset}/{experiment}.log",
    script:
        "../scripts/make_affinity_labels.py"


rule train_affinity:
    input:
        unpack(affinity_inputs),
        index=f"{R}/dataset_index.json",
        labels=f"{X}/affinity/labels",
    output:
        model=f"{X}/affinity/model.pt",
        loss_log=f"{X}/affinity/train_log.csv",
    wildcard_constraints:
        experiment=refined_by("affinitynet", "irn"),
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        method=experiment_value("refine"),
        model=with_weights(affinity_section("model")),
        train=affinity_section("train"),
        radius=affinity_section("radius"),
        seed=run_seed,
        device=section("device"),
        sync_bn=config["distributed"]["sync_bn"],
    threads: training_cores("train_affinity", affinity_section("train"))
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("train_affinity")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        benchmark_file("train_affinity")
    log:
        "logs/train_affinity/{dataset}/{experiment}.log",
    script:
        "../scripts/train_affinity.py"


rule random_walk:
    input:
        index=f"{R}/dataset_index.json",
        cams=cam_file("maps"),
        model=f"{X}/affinity/model.pt",
    output:
        directory(sharded("pseudo_labels", f"{X}/pseudo/masks")),
    wildcard_constraints:
        experiment=refined_by("affinitynet", "irn"),
    params:
        root=dataset_root,
        split=section("stage_splits", "train"),
        method=experiment_value("refine"),
        walk=affinity_section("walk"),
        device=section("device"),
    threads: all_cores
    priority: CAM_CHAIN_PRIORITY
    resources: **rule_resources("random_walk")
    conda:
        "../../envs/wsss.yaml"
    benchmark:
        sharded_benchmark_file("pseudo_labels", "random_walk")
    log:
        sharded_log("pseudo_labels", "logs/random_walk/{dataset}/{experiment}.log"),
    script:
        "../scripts/random_walk.py"
