# ImageNet stand-in of the synthetic datasets with a `pretrain` section (synth_voc): the shape
# corpus, and one backbone trained on it per entry of pretrain.backbones, written where the
# recipes' `pretrained:` points (wsss.fetch.stand_in.stand_in_path), so it is built first.
from wsss.fetch.stand_in import check_stand_in

PRETRAIN_DATASETS = [name for name, spec in DATASETS.items() if "pretrain" in spec]
PRETRAIN_BACKBONES = sorted(
    {b for name in PRETRAIN_DATASETS for b in DATASETS[name]["pretrain"]["backbones"]}
)
for _name, _spec in DATASETS.items():
    try:
        check_stand_in(_name, _spec)
    except ValueError as error:
        raise WorkflowError(f"config: {error}") from None


rule make_pretrain_corpus:
    output:
        f"{R}/pretrain/corpus.npz",
    log:
        "logs/make_pretrain_corpus/{dataset}.log",
    wildcard_constraints:
        dataset="|".join(map(re.escape, PRETRAIN_DATASETS)) or "(?!)",
    conda:
        "../../envs/wsss.yaml"
    resources:
        **rule_resources("make_pretrain_corpus"),
    params:
        corpus=section("pretrain", "corpus"),
    script:
        "../scripts/make_pretrain_corpus.py"


rule pretrain_backbone:
    input:
        corpus=f"{R}/pretrain/corpus.npz",
    output:
        weights=f"{R}/pretrain/{{backbone}}.pth",
        loss_log=f"{R}/pretrain/{{backbone}}_loss.csv",
        manifest=f"{R}/pretrain/{{backbone}}.json",
    log:
        "logs/pretrain_backbone/{dataset}/{backbone}.log",
    wildcard_constraints:
        dataset="|".join(map(re.escape, PRETRAIN_DATASETS)) or "(?!)",
        backbone="|".join(map(re.escape, PRETRAIN_BACKBONES)) or "(?!)",
    priority: CAM_CHAIN_PRIORITY + 1
    conda:
        "../../envs/wsss.yaml"
    threads: training_cores("pretrain_backbone", section("pretrain", "train"))
    resources:
        **rule_resources("pretrain_backbone"),
    params:
        backbone=lambda w: DATASETS[w.dataset]["pretrain"]["backbones"][w.backbone],
        train=section("pretrain", "train"),
        seed=section("pretrain", "seed"),
        holdout=section("pretrain", "holdout"),
        device=section("device"),
    script:
        "../scripts/pretrain_backbone.py"
