"""How good can a random walk be on this dataset? IRN's walk with a *ground-truth* boundary.

The learned boundary is replaced by the ground-truth object edges (the 255 band of
SegmentationClass, max-pooled to the walk's grid), the seeds are an experiment's CAMs, and the
walk is IRN's (`wsss.refine.random_walk.propagate`). The mIoU over a grid of walk lengths and
background planes is an upper bound for any boundary network at that stride; compare it with the
experiment's CRF pseudo masks (`miou.csv`).

    .venv/bin/python benchmarks/rw_ceiling.py --results results/synth --experiment baseline

Needs a finished run of that experiment's CAM stage (results/<dataset>/<experiment>/cam/maps).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wsss.cam.labels import label_ids
from wsss.data.voc import mask_path
from wsss.io import load_cam_npz, load_label_png
from wsss.metrics import confusion_matrix, miou
from wsss.refine.random_walk import propagate


def _pool(x: torch.Tensor, stride: int, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Pad (K, H, W) to the stride-aligned canvas and pool to the walk grid."""
    h, w = -(-size[0] // stride), -(-size[1] // stride)
    x = F.pad(x[None], (0, stride * w - size[1], 0, stride * h - size[0]))
    pool = F.adaptive_max_pool2d if mode == "max" else F.adaptive_avg_pool2d
    return pool(x, (h, w))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results/synth")
    parser.add_argument("--root", default="results/synth/dataset", help="VOC-layout dataset root")
    parser.add_argument("--experiment", default="baseline")
    parser.add_argument("--split", default="train")
    parser.add_argument("--gt-dir", default="SegmentationClass")
    parser.add_argument("--strides", type=int, nargs="+", default=[4, 1])
    parser.add_argument("--exp-times", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--bg", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--beta", type=float, default=10.0)
    parser.add_argument("--radius", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)

    results = Path(args.results)
    index = json.loads((results / "dataset_index.json").read_text())
    root = Path(args.root)
    ids = index["splits"][args.split]
    n_classes = len(index["classes"])
    cam_dir = results / args.experiment / "cam" / "maps"
    grid = [(s, e, t) for s in args.strides for e in args.exp_times for t in args.bg]
    conf = {key: np.zeros((n_classes, n_classes), np.int64) for key in grid}
    for image_id in ids:
        cam = load_cam_npz(cam_dir / f"{image_id}.npz")
        gt = load_label_png(mask_path(root, image_id, args.gt_dir))
        size = gt.shape
        edge = torch.from_numpy((gt == 255).astype(np.float32))[None]
        cams = torch.from_numpy(cam["high_res"])
        ids_ = label_ids(cam["keys"])
        for stride in args.strides:
            boundary = _pool(edge, stride, size, "max")[0]
            seeds = _pool(cams, stride, size, "avg")
            for exp_times in args.exp_times:
                scores = propagate(
                    seeds,
                    boundary,
                    radius=args.radius,
                    beta=args.beta,
                    exp_times=exp_times,
                    bg_threshold=0.0,
                    out_size=size,
                    stride=stride,
                )
                for bg in args.bg:
                    scores[0] = bg
                    pred = ids_[scores.argmax(0).numpy()]
                    conf[(stride, exp_times, bg)] += confusion_matrix(pred, gt, n_classes)
    print(
        f"IRN random walk on ground-truth boundaries, seeds = {args.experiment} CAMs, "
        f"{len(ids)} {args.split} images (β {args.beta}, radius {args.radius})"
    )
    print("stride  steps  bg    mIoU")
    for (stride, exp_times, bg), c in conf.items():
        print(f"{stride:>6}  {2**exp_times:>5}  {bg:.2f}  {miou(c):.3f}")


if __name__ == "__main__":
    main()
