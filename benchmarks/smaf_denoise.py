"""SMAF's denoising variants on one EPS teacher: CAM mIoU of the self-trained students.

Trains one student per ``denoise`` variant (``none`` = as released, ``prototype``,
``prototype+saliency``) from the finished ``eps`` experiment of a run (its model and fused maps),
with the dataset's ``cam_methods.smaf`` settings otherwise, infers CAMs on the ``train`` split
and evaluates them like ``eval_cam`` (fixed threshold and GT-swept). The teacher's own CAM row
comes from its ``cam/eval/metrics.csv``.

    .venv/bin/python benchmarks/smaf_denoise.py    # ≈ 5 min per variant on 2 cores

Needs ``results/synth/eps/cam/{model.pt,maps}`` (``make demo`` or
``snakemake --cores all results/synth/eps/cam/eval/metrics.csv``); writes under
``results/synth/smaf_denoise/<variant>/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from snakemake.utils import validate

from wsss.stages.cam import run_eval_cam, run_infer_cam
from wsss.stages.smaf import run_train_smaf
from wsss.workflow.datasets import with_train_defaults

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("none", "prototype", "prototype+saliency")


def _rows(path: Path) -> str:
    """``fixed 0.596 (t 0.50)  oracle 0.622 (t 0.64)`` from an eval_cam metrics file."""
    fields = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return "  ".join(f"{f[4]} {float(f[6]):.3f} (t {float(f[5]):.2f})" for f in fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synth")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    config = with_train_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))  # its defaults
    spec = config["datasets"][args.dataset]
    smaf, infer = spec["cam_methods"]["smaf"], spec["cam_methods"]["smaf"]["infer"]
    results = REPO / "results" / args.dataset
    index, root = results / "dataset_index.json", REPO / spec["root"]
    teacher = results / "eps" / "cam"
    device = torch.device("cpu")
    print(f"teacher (eps): {_rows(teacher / 'eval' / 'metrics.csv')}")
    for variant in args.variants:
        out = results / "smaf_denoise" / variant
        if not (out / "metrics.csv").is_file():
            run_train_smaf(
                index,
                root,
                teacher / "model.pt",
                teacher / "maps",
                out / "model.pt",
                out / "train_log.csv",
                split=spec["stage_splits"]["train"],
                train=smaf["train"],
                loss=dict(smaf["loss"], denoise=variant),
                seed=spec["seed"],
                device=device,
                saliency_dir=spec.get("saliency_dir"),
            )
            split = spec["stage_splits"]["eval_train"]
            run_infer_cam(
                index,
                root,
                out / "model.pt",
                out / "maps",
                split=split,
                scales=infer["scales"],
                flip=infer["flip"],
                device=device,
                normalization=infer["normalization"],
            )
            run_eval_cam(
                index,
                root,
                out / "maps",
                out / "metrics.csv",
                out / "threshold_curve.csv",
                dataset=args.dataset,
                experiment=f"smaf[{variant}]",
                split=split,
                gt_dir=spec["splits"][split],
                bg_threshold=smaf.get("bg_threshold", spec["cam"]["eval"]["bg_threshold"]),
                sweep=spec["cam"]["eval"]["sweep"],
            )
        print(f"smaf denoise={variant}: {_rows(out / 'metrics.csv')}")


if __name__ == "__main__":
    main()
