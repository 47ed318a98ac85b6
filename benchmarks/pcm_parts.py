"""Which part of a SEAM/CPN refined map helps? CAM mIoU of each term of ``cam_rv``.

For a trained ``seam`` or ``cpn`` classifier, CAMs are inferred (scales × flip, min–max
normalised) from each part separately — the guide map (normalised ``fc8`` CAM), the PCM output,
CPN's PRCM ⊙ guide term, and their sum ``cam_rv`` (what the pipeline uses) — and scored with the
GT-swept background threshold. It also prints how peaked the PRCM attention is (mean over
classes of its largest weight; 1/positions would be uniform).

    .venv/bin/python benchmarks/pcm_parts.py --results results/synth --experiment cpn
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wsss.cam.inference import multiscale_cams, normalize_present
from wsss.cam.labels import sweep_confusion, threshold_grid
from wsss.data.transforms import normalize_image
from wsss.data.voc import image_path, mask_path
from wsss.io import load_image, load_label_png
from wsss.metrics import miou
from wsss.models import build_cam_model
from wsss.models.seam import guide_map, pixel_correlation, pixel_region_correlation
from wsss.stages.training import load_model

PARTS = ("guide", "pcm", "prcm", "cam_rv")


def parts(net, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The terms of ``net``'s refined map (the steps of ``PCMNet.forward``), background first."""
    side_a, side_b, top = net.feature_stages
    stages = net.backbone.forward_stages(x)
    cam = net.fc8(stages[top])
    h, w = cam.shape[-2:]
    guide = guide_map(cam)
    stack = torch.cat(
        [
            F.interpolate(x, (h, w), mode="bilinear", align_corners=True),
            F.relu(net.f8_3(stages[side_a])),
            F.relu(net.f8_4(stages[side_b])),
        ],
        dim=1,
    )
    embedding = net.f9(stack)
    out = {"guide": guide, "pcm": pixel_correlation(guide, embedding)}
    if net.f10 is not None:
        attention = pixel_region_correlation(
            guide, stack, F.relu(embedding), net.f10, layout=net.prcm_layout
        )
        out["attention"] = attention
        out["prcm"] = attention * guide
    out["cam_rv"] = net(x)[1]
    return out


class _Parts(torch.nn.Module):
    """Every part's foreground maps side by side, so one multi-scale pass scores them all."""

    def __init__(self, net, names: list[str]) -> None:
        super().__init__()
        self.net, self.names = net, names

    def cams(self, x: torch.Tensor) -> torch.Tensor:
        terms = parts(self.net, x)
        return torch.cat([F.relu(terms[name][:, 1:]) for name in self.names], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results/synth")
    parser.add_argument("--root", default="results/synth/dataset", help="VOC-layout dataset root")
    parser.add_argument("--experiment", default="cpn")
    parser.add_argument("--split", default="train")
    parser.add_argument("--gt-dir", default="SegmentationClass")
    parser.add_argument("--images", type=int, default=60, help="first N images of the split")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 1.5])
    args = parser.parse_args()
    torch.set_num_threads(2)

    results = Path(args.results)
    index = json.loads((results / "dataset_index.json").read_text())
    ids = index["splits"][args.split][: args.images]
    n_classes = len(index["classes"])
    net = load_model(
        results / args.experiment / "cam" / "model.pt", build_cam_model, torch.device("cpu")
    )
    names = [p for p in PARTS if p != "prcm" or net.f10 is not None]
    grid = threshold_grid(0.05, 0.95, 0.05)
    conf = {p: np.zeros((len(grid), n_classes, n_classes), np.int64) for p in names}
    peaks = []
    with torch.no_grad():
        for image_id in ids:
            image = normalize_image(load_image(image_path(args.root, image_id)))
            gt = load_label_png(mask_path(args.root, image_id, args.gt_dir))
            labels = np.zeros(n_classes - 1)
            labels[index["labels"][image_id]] = 1
            if net.f10 is not None:
                peaks.append(parts(net, image[None])["attention"].flatten(2).max(-1).values.mean())
            cams = multiscale_cams(
                _Parts(net, names), image, scales=args.scales, flip=True, stride=8
            )
            for name, part_cams in zip(names, cams.chunk(len(names)), strict=True):
                keys, maps = normalize_present(part_cams, labels, mode="minmax")
                conf[name] += sweep_confusion(maps, keys, gt, grid, n_classes)
    print(
        f"{args.experiment}: CAM mIoU of each part, GT-swept threshold, {len(ids)} images, "
        f"scales {args.scales}"
    )
    for name in names:
        curve = [miou(c) for c in conf[name]]
        best = int(np.nanargmax(curve))
        print(f"  {name:<7} {curve[best]:.3f} (t = {grid[best]:.2f})")
    if peaks:
        print(f"  PRCM attention: mean largest weight {float(np.mean(peaks)):.3f}")


if __name__ == "__main__":
    main()
