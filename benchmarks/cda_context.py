"""Does CDA reduce the CAM's leak onto co-occurring background? Baseline vs CDA, bias on/off.

The synthetic generator draws an image's background from the preferred texture of one of its
classes with probability ``context_bias`` (0.7 in config.yaml), so a classifier can learn the
texture as evidence for the class and its CAM spreads onto it. For every (image, present class)
of the ``train`` split this measures the share of ground-truth background pixels that the CAM
(at the fixed background threshold) labels as that class, separately for images whose background
*is* the class's preferred texture and for the others; the difference is the context leak.

    .venv/bin/python benchmarks/cda_context.py           # runs what is missing (≈ 15 min)
    .venv/bin/python benchmarks/cda_context.py --no-run  # tables from existing results only

Context bias on = the default ``synth`` dataset (results/synth). Context bias off = a copy of it
with ``context_bias: 0``, declared in a generated config overlay as dataset ``synth_ctx0``
(results/synth_ctx0); Snakemake runs baseline and cda there up to their CAM and pseudo-mask
evaluations.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from wsss.cam.labels import cams_to_label
from wsss.io import load_cam_npz, load_label_png
from wsss.workflow.paths import run_path

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = ("baseline", "cda")


def context_leak(results: Path, experiment: str, bg_threshold: float) -> dict[str, float]:
    """Mean share of GT-background pixels labelled as a present class, on images whose
    background is that class's preferred texture (``preferred``) and on the rest (``other``)."""
    root = results / "dataset"
    meta = json.loads((root / "synthetic.json").read_text())
    names = meta["params"]["fg_class_names"]
    preferred = meta["preferred_background"]
    shares: dict[str, list[float]] = {"preferred": [], "other": []}
    for image_id in (root / "ImageSets/Segmentation/train.txt").read_text().split():
        cam = load_cam_npz(results / experiment / "cam/maps" / f"{image_id}.npz")
        gt = load_label_png(root / "SegmentationClass" / f"{image_id}.png")
        pred = cams_to_label(cam["high_res"], cam["keys"], bg_threshold)
        background = gt == 0
        if not background.any():
            continue
        texture = meta["images"][image_id]["background"]
        for k in cam["keys"]:
            bucket = "preferred" if preferred[names[k]] == texture else "other"
            shares[bucket].append(float((pred[background] == k + 1).mean()))
    out = {b: float(np.mean(v)) if v else float("nan") for b, v in shares.items()}
    out["leak"] = out["preferred"] - out["other"]
    out["pairs_preferred"], out["pairs_other"] = len(shares["preferred"]), len(shares["other"])
    return out


def _overlay(path: Path) -> None:
    """Declare synth_ctx0: the synth dataset with context_bias 0, under results/synth_ctx0."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    spec = copy.deepcopy(config["datasets"]["synth"])
    spec["root"] = "results/synth_ctx0/dataset"
    spec["synthetic"]["context_bias"] = 0.0
    path.write_text(yaml.safe_dump({"datasets": {"synth_ctx0": spec}}))


def _metrics(results: Path, experiment: str) -> dict[str, float]:
    rows = {}
    for stage in ("cam", "pseudo"):
        metrics = Path(run_path(f"{stage}_metrics", results.name, experiment))
        for line in (results.parent.parent / metrics).read_text().splitlines()[1:]:
            fields = line.split(",")
            rows[f"{stage}_{fields[4]}"] = float(fields[6])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-run", action="store_true", help="only read existing results")
    parser.add_argument("--cores", default="2")
    args = parser.parse_args()
    overlay = REPO / "results" / "synth_ctx0.overlay.yaml"
    if not args.no_run:
        overlay.parent.mkdir(exist_ok=True)
        _overlay(overlay)
        targets = [
            run_path(f"{stage}_metrics", ds, exp)
            for ds in ("synth", "synth_ctx0")
            for exp in EXPERIMENTS
            for stage in ("cam", "pseudo")
        ]
        # targets first: --configfile takes every following argument as a config file
        cmd = [sys.executable, "-m", "snakemake", "--cores", args.cores, *targets]
        subprocess.run([*cmd, "--configfile", str(overlay)], cwd=REPO, check=True)
    threshold = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]["synth"]["cam"]
    threshold = threshold["eval"]["bg_threshold"]
    print(
        f"CAM at the fixed background threshold {threshold}; train split; shares of GT background"
    )
    print(
        "context_bias  experiment  CAM mIoU (fixed/swept)  pseudo  bg→class: preferred  other  leak"
    )
    for label, ds in (("0.7 (on)", "synth"), ("0 (off)", "synth_ctx0")):
        results = REPO / "results" / ds
        for exp in EXPERIMENTS:
            m, leak = _metrics(results, exp), context_leak(results, exp, threshold)
            print(
                f"{label:12}  {exp:10}  {m['cam_fixed']:.3f} / {m['cam_oracle']:.3f}"
                f"          {m['pseudo_fixed']:.3f}   {leak['preferred']:.3f}"
                f"     {leak['other']:.3f}  {leak['leak']:+.3f}"
                f"   (pairs {leak['pairs_preferred']}/{leak['pairs_other']})"
            )


if __name__ == "__main__":
    main()
