# Provenance: the manifest.json of every experiment directory (git state, resolved params of
# every stage behind its numbers, package versions, seed, devices, split checksums, timing).


include: "helpers/provenance.smk"


rule record_provenance:
    input:
        index=INDEX,
        metrics=per_run(PLAN.metric_files),
    output:
        run_path("manifest"),
    log:
        "logs/record_provenance/{dataset}/{experiment}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("record_provenance"),
    params:
        stages=provenance_stages,
        dataset_stages=provenance_dataset_stages,
        experiment=lambda wildcards: run_experiment(wildcards.experiment),
        seed=per_run(PLAN.run_seed),
        repo=workflow.basedir,
        device=section("device"),
        root=section("root"),
        labels_file=section("labels_file"),
    script:
        "../scripts/record_provenance.py"
