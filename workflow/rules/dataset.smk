# Dataset rules: generate the synthetic benchmark; convert COCO-2014 to a VOC-format tree; check
# and index a dataset tree (VOC-format, Cityscapes or ADE20K layout).


include: "helpers/dataset.smk"


rule make_synthetic_voc:
    output:
        directory("{root}"),
    log:
        "logs/make_synthetic_voc/{root}.log",
    benchmark:
        generation_benchmark_file("make_synthetic_voc")
    wildcard_constraints:
        root="|".join(map(re.escape, SYNTHETIC_ROOTS)) or "(?!)",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("make_synthetic_voc"),
    params:
        synthetic=synthetic_section("synthetic"),
        classes=synthetic_section("classes"),
    script:
        "../scripts/make_synthetic_voc.py"


rule convert_coco:
    input:
        coco_inputs,
    output:
        directory("{root}"),
    log:
        "logs/convert_coco/{root}.log",
    benchmark:
        generation_benchmark_file("convert_coco")
    wildcard_constraints:
        root="|".join(map(re.escape, COCO_ROOTS)) or "(?!)",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("convert_coco"),
    params:
        source=coco_section("source"),
        images=coco_section("images"),
        crowd=coco_section("crowd"),
        dataset=lambda wildcards: COCO_ROOTS[wildcards.root],
        classes=lambda wildcards: DATASETS[COCO_ROOTS[wildcards.root]]["classes"],
    script:
        "../scripts/convert_coco.py"


rule check_dataset:
    input:
        dataset_sources,
    output:
        INDEX,
    log:
        "logs/check_dataset/{dataset}.log",
    benchmark:
        benchmark_path("check_dataset", "_dataset")
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("check_dataset"),
    params:
        root=section("root"),
        layout=lambda wildcards: DATASETS[wildcards.dataset].get("layout", "voc"),
        classes=section("classes"),
        splits=section("splits"),
        labels_file=section("labels_file"),
        check_pixels=section("check_pixels"),
        max_image_pixels=lambda w: DATASETS[w.dataset].get("max_image_pixels"),
    script:
        "../scripts/check_dataset.py"
