"""Time `snakemake -n results/voc/miou.csv` over a VOC-sized tree (10,582 train_aug ids).

Usage: python benchmarks/dag_dry_run.py [--train-aug 10582] [--val 1449] [--shards 1 8]

Writes a VOC-layout placeholder tree in a temporary folder: the ImageSets id lists, an empty
file per JPEG image and mask, and an empty SALImages folder. A dry run never opens an image:
it checks that the root, the split lists and the saliency folder exist (dataset_sources,
saliency_input), and check_dataset, which reads the images, is only planned. For each K it runs
the dry run with `datasets.voc.root` pointing at the tree and `shards` set to K for the three
sharded stages, and prints the wall time and the planned job count; and, for reference, the
time of a dry run of a one-rule workflow (Snakemake's own start-up: imports and plugin
discovery — on a host with SLURM client tools but no reachable controller, the SLURM executor
plugin's probes alone can take seconds there).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def placeholder_tree(root: Path, splits: dict[str, int]) -> None:
    """``ImageSets/Segmentation/<split>.txt`` with VOC-style ids, an empty JPEG and mask per id."""
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    for folder in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "SALImages"):
        (root / folder).mkdir()
    offset = 0
    for split, count in splits.items():
        ids = [f"{2007 + (offset + i) % 6}_{offset + i:06d}" for i in range(count)]
        offset += count
        (sets / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        for image_id in ids:
            (root / "JPEGImages" / f"{image_id}.jpg").touch()
            (root / "SegmentationClassAug" / f"{image_id}.png").touch()


def dry_run(workdir: Path, root: Path, shards: int) -> tuple[float, int]:
    """(seconds, planned jobs) of one dry run of results/voc/miou.csv."""
    overlay = workdir / f"voc_k{shards}.yaml"
    config = {"datasets": {"voc": {"root": str(root)}}}
    config["shards"] = dict.fromkeys(("infer_cam", "pseudo_labels", "infer_seg"), shards)
    overlay.write_text(yaml.safe_dump(config))
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["-n", "results/voc/miou.csv", "--configfile", str(overlay)]
    start = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"dry run failed:\n{result.stderr[-3000:]}{result.stdout[-3000:]}")
    match = re.search(r"^total\s+(\d+)", result.stdout, re.MULTILINE)
    return seconds, int(match.group(1)) if match else -1


def startup_seconds(workdir: Path) -> float:
    """Wall time of `snakemake -n` on a one-rule workflow: the start-up every run pays."""
    snakefile = workdir / "Trivial.smk"
    snakefile.write_text('rule a:\n    output: "a.txt"\n    shell: "touch {output}"\n')
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "--snakefile", str(snakefile), "--directory", str(workdir), "-n"]
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-aug", type=int, default=10582)
    parser.add_argument("--train", type=int, default=1464)
    parser.add_argument("--val", type=int, default=1449)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, workdir = Path(tmp) / "VOC2012", Path(tmp) / "work"
        workdir.mkdir()
        start = time.perf_counter()
        placeholder_tree(root, {"train_aug": args.train_aug, "train": args.train, "val": args.val})
        print(f"tree: {args.train_aug} train_aug, {args.train} train, {args.val} val ids "
              f"({time.perf_counter() - start:.1f} s to write)")  # fmt: skip
        startup = startup_seconds(workdir)
        print(f"snakemake start-up (one-rule workflow, dry run): {startup:.2f} s")
        for shards in args.shards:
            seconds, jobs = dry_run(workdir, root, shards)
            print(
                f"K = {shards}: snakemake -n results/voc/miou.csv  {seconds:.2f} s, {jobs} jobs "
                f"({seconds - startup:.2f} s beyond start-up)"
            )


if __name__ == "__main__":
    main()
