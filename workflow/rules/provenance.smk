# Provenance: the manifest.json of every experiment directory (git state, resolved params of
# every stage behind its numbers, package versions, seed, devices, split checksums, timing).


rule record_provenance:
    input:
        index=f"{R}/dataset_index.json",
        metrics=manifest_metrics,
    output:
        f"{X}/manifest.json",
    params:
        stages=provenance_stages,
        dataset_stages=provenance_dataset_stages,
        experiment=experiment_of,
        seed=run_seed,
        repo=workflow.basedir,
        device=section("device"),
        root=dataset_root,
        labels_file=section("labels_file"),
    resources: **rule_resources("record_provenance")
    conda:
        "../../envs/wsss.yaml"
    log:
        "logs/record_provenance/{dataset}/{experiment}.log",
    script:
        "../scripts/record_provenance.py"
