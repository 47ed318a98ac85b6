# Fetch rules: ImageNet weights (fetch_weights), dataset archives laid out in a dataset's root
# (fetch_dataset) and saliency maps (fetch_saliency). All three are local rules: under a cluster
# executor they run on the submitting host, which has internet where compute nodes may not.


include: "helpers/fetch.smk"


rule fetch_weights:
    output:
        weights=f"{WEIGHTS_CACHE}/{{name}}.pth",
        manifest=f"{WEIGHTS_CACHE}/{{name}}.json",
    log:
        "logs/fetch_weights/{name}.log",
    wildcard_constraints:
        name="|".join(map(re.escape, WEIGHTS)),
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("fetch_weights"),
    params:
        overrides=lambda wildcards: config["weights"]["sources"].get(wildcards.name),
    script:
        "../scripts/fetch_weights.py"


rule fetch_dataset:
    input:
        from_sources(sources.fetch_inputs),
    output:
        dataset_path("fetched"),
    log:
        "logs/fetch_dataset/{dataset}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("fetch_dataset"),
    params:
        recipe=section("fetch"),
        destination=from_sources(sources.fetch_destination),
        overrides=lambda wildcards: sources.download_overrides(
            config, RECIPES[DATASETS[wildcards.dataset]["fetch"]]
        ),
        cache=from_sources(sources.download_cache),
        keep_archives=config["downloads"]["keep_archives"],
    script:
        "../scripts/fetch_dataset.py"


rule fetch_saliency:
    input:
        from_sources(sources.saliency_fetch_inputs),
    output:
        dataset_path("saliency"),
    log:
        "logs/fetch_saliency/{dataset}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("fetch_saliency"),
    params:
        root=section("root"),
        saliency_dir=section("saliency_dir"),
        split=section("stage_splits", "train"),
        archive=section("saliency_source"),
        overrides=saliency_overrides,
        cache=from_sources(sources.download_cache),
        keep_archives=config["downloads"]["keep_archives"],
    script:
        "../scripts/fetch_saliency.py"
