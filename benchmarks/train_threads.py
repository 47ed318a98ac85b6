"""Speed and bytes of a training stage with 1 vs 2 torch threads (train_seg, synthetic config).

Usage: python benchmarks/train_threads.py [--images 64] [--steps 60] [--threads 1 2]

Generates a synthetic tree with config.yaml's generator settings (``--images`` train_aug
images) and trains the synthetic DeepLab of config.yaml (``seg.train`` with ``--steps``) on its
ground-truth masks, once per entry of ``--threads`` (``seg.train.threads``), each time from the
same seed. Prints seconds per step per thread count, the ratio to the first, and whether the
weights are bit-identical: with the thread count fixed in the config they must be, whatever
the process's own thread setting (``--ambient``, default 1) is.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml

from wsss.data import synthetic
from wsss.io import load_checkpoint
from wsss.stages.dataset import run_check_dataset
from wsss.stages.seg import run_train_seg
from wsss.workflow.datasets import with_train_defaults

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--ambient", type=int, default=1, help="torch threads set beforehand")
    args = parser.parse_args()
    config = with_train_defaults(yaml.safe_load((REPO / "config.yaml").read_text()))
    config = config["datasets"]["synth"]
    generator = dict(config["synthetic"], num_train_aug=args.images, num_train=1, num_val=1)
    model = dict(config["seg"]["models"]["deeplab"], pretrained=None)  # no ImageNet file here
    with tempfile.TemporaryDirectory() as tmp:
        root, index = Path(tmp) / "voc", Path(tmp) / "index.json"
        synthetic.generate(root, fg_class_names=config["classes"][1:], **generator)
        run_check_dataset(
            root, index, dataset="synth", classes=config["classes"],
            splits={"train_aug": "SegmentationClassAug"}, labels_file="cls_labels.csv",
            check_pixels=False,
        )  # fmt: skip
        weights, seconds = {}, {}
        for threads in args.threads:
            torch.set_num_threads(args.ambient)
            train = dict(config["seg"]["train"], steps=args.steps, threads=threads)
            train["checkpoint_every"] = args.steps
            out = Path(tmp) / f"t{threads}"
            start = time.perf_counter()
            run_train_seg(
                index, root, out / "model.pt", out / "log.csv", split="train_aug",
                mask_dir="SegmentationClassAug", model_name="deeplab", model=model,
                train=train, seed=0, device=torch.device("cpu"),
            )  # fmt: skip
            seconds[threads] = (time.perf_counter() - start) / args.steps
            weights[threads] = load_checkpoint(out / "model.pt")["state_dict"]
    first = args.threads[0]
    for threads in args.threads:
        same = all(torch.equal(v, weights[first][k]) for k, v in weights[threads].items())
        print(
            f"threads {threads}: {1000 * seconds[threads]:.0f} ms/step, "
            f"{seconds[first] / seconds[threads]:.2f}x the speed of {first}, "
            f"weights {'identical to' if same else 'differ from'} threads {first}"
        )


if __name__ == "__main__":
    main()
