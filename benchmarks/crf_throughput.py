"""Throughput of the CRF pseudo-label stage (make_pseudo_labels) with 1 vs N worker processes.

Usage: OMP_NUM_THREADS=1 python benchmarks/crf_throughput.py [--images 40] [--size 320 400]
       [--processes 1 2] [--preset irn_label]

Generates a synthetic VOC tree of ``--images`` train_aug images (side lengths in ``--size``),
blurred ground-truth CAMs for them, and times `run_make_pseudo_labels` on the same inputs with
each process count (the CRF parameters of ``--preset`` in config.yaml). Prints images/s per
count, the speed-up over the first count, and checks that every run wrote the same masks.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from scipy.ndimage import gaussian_filter

from wsss.data import synthetic
from wsss.io import save_cam_npz
from wsss.stages.common import DatasetIndex
from wsss.stages.dataset import run_check_dataset
from wsss.stages.pseudo import run_make_pseudo_labels

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["background", *synthetic.SHAPE_FAMILIES]


def make_inputs(base: Path, images: int, size: tuple[int, int]) -> tuple[Path, Path, Path]:
    """(root, index, cam folder): a generated tree and blurred ground-truth CAMs."""
    root, index, cams = base / "voc", base / "index.json", base / "cams"
    synthetic.generate(
        root, seed=0, num_train_aug=images, num_train=1, num_val=1, image_size_range=size
    )
    splits = {"train_aug": "SegmentationClassAug", "train": "SegmentationClass"}
    run_check_dataset(
        root, index, dataset="synth", classes=CLASSES, splits=splits,
        labels_file="cls_labels.csv", check_pixels=False,
    )  # fmt: skip
    for image_id in DatasetIndex(index).ids("train_aug"):
        mask = np.asarray(Image.open(root / "SegmentationClassAug" / f"{image_id}.png"))
        keys = np.array([c - 1 for c in np.unique(mask) if 0 < c < 255], dtype=np.int64)
        planes = [gaussian_filter((mask == k + 1).astype(np.float32), 4) for k in keys]
        high = [p / max(p.max(), 1e-6) for p in planes]
        high_res = np.stack(high) if high else np.zeros((0, *mask.shape), np.float32)
        save_cam_npz(cams / f"{image_id}.npz", keys=keys, high_res=high_res)
    return root, index, cams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--size", type=int, nargs=2, default=[320, 400])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--preset", default="irn_label")
    args = parser.parse_args()
    crf = yaml.safe_load((REPO / "config.yaml").read_text())["crf_presets"][args.preset]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        root, index, cams = make_inputs(Path(tmp), args.images, tuple(args.size))
        rates, outputs = {}, {}
        for processes in args.processes:
            out = Path(tmp) / f"masks_p{processes}"
            start = time.perf_counter()
            run_make_pseudo_labels(
                index, root, cams, out, split="train_aug", bg_threshold=0.15, crf=crf,
                ignore_disagreement=False, processes=processes,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            rates[processes] = args.images / seconds
            outputs[processes] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
            print(
                f"{processes} process(es): {args.images} images in {seconds:.2f} s, "
                f"{rates[processes]:.2f} images/s"
            )
        first = args.processes[0]
        for processes in args.processes[1:]:
            same = outputs[processes] == outputs[first]
            print(
                f"speed-up {processes} vs {first}: {rates[processes] / rates[first]:.2f}x "
                f"(same masks: {same})"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
