# Shareable results: an experiment directory, or a dataset's results, as a .tar.gz holding a
# SHA256SUMS list (+ <archive>.sha256 beside it); verify checks an archive, ours or received.


include: "helpers/export.smk"


rule export:
    input:
        run_path("manifest"),
    output:
        archive="exports/{dataset}/{experiment}.tar.gz",
        checksum="exports/{dataset}/{experiment}.tar.gz.sha256",
    log:
        "logs/export/{dataset}/{experiment}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("export"),
    params:
        directory=input_folder,
        arcname="{dataset}/{experiment}",
        exclude=config["export"]["exclude"],
        include=None,
    script:
        "../scripts/export.py"


rule export_dataset:
    input:
        dataset_path("miou"),
        dataset_path("cost"),
        per_dataset(PLAN.report_files),
    output:
        archive="exports/{dataset}.tar.gz",
        checksum="exports/{dataset}.tar.gz.sha256",
    log:
        "logs/export_dataset/{dataset}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("export_dataset"),
    params:
        directory=input_folder,
        arcname="{dataset}",
        exclude=config["export"]["exclude"],
        include=per_dataset(PLAN.export_entries),
    script:
        "../scripts/export.py"


rule verify:
    input:
        "{archive}.tar.gz",
    output:
        "{archive}.verified",
    log:
        "logs/verify/{archive}.log",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("verify"),
    script:
        "../scripts/verify.py"
