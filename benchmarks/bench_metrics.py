"""Time wsss.metrics.confusion_matrix on VOC-sized label maps (1,464 pairs = VOC12 `train`).

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py [--pairs 1464] [--ref-pairs 146]

Prints the time for the whole set and the speed-up over a naive-but-vectorised ``np.add.at``
reference timed on a subset (per-pair times compared). Only the metric calls are timed; the
random maps are generated in chunks beforehand so memory stays small.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from wsss.metrics import confusion_matrix

HEIGHT, WIDTH, NUM_CLASSES, IGNORE = 375, 500, 21, 255


def reference_confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    counted = gt != IGNORE
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(conf, (gt[counted].astype(np.intp), pred[counted].astype(np.intp)), 1)
    return conf


def random_pairs(rng: np.random.Generator, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    gt = rng.integers(0, NUM_CLASSES, (count, HEIGHT, WIDTH), dtype=np.uint8)
    gt[rng.random((count, HEIGHT, WIDTH)) < 0.05] = IGNORE  # ~5 % void pixels, as on VOC borders
    pred = rng.integers(0, NUM_CLASSES, (count, HEIGHT, WIDTH), dtype=np.uint8)
    return list(zip(pred, gt, strict=True))


def time_calls(fn, pairs) -> tuple[float, np.ndarray]:
    total = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    start = time.perf_counter()
    for pred, gt in pairs:
        total += fn(pred, gt, NUM_CLASSES)
    return time.perf_counter() - start, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1464)
    parser.add_argument("--ref-pairs", type=int, default=146)
    parser.add_argument("--chunk", type=int, default=122)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    fast_seconds, done = 0.0, 0
    while done < args.pairs:
        pairs = random_pairs(rng, min(args.chunk, args.pairs - done))
        seconds, _ = time_calls(confusion_matrix, pairs)
        fast_seconds += seconds
        done += len(pairs)

    pairs = random_pairs(rng, args.ref_pairs)
    fast_sub, fast_total = time_calls(confusion_matrix, pairs)
    ref_sub, ref_total = time_calls(reference_confusion, pairs)
    if not np.array_equal(fast_total, ref_total):
        raise SystemExit("confusion_matrix disagrees with the np.add.at reference")

    print(
        f"confusion_matrix: {args.pairs} pairs of {HEIGHT}x{WIDTH} uint8 in {fast_seconds:.3f} s "
        f"({1e3 * fast_seconds / args.pairs:.3f} ms/pair)"
    )
    print(
        f"np.add.at reference on {args.ref_pairs} pairs: {1e3 * ref_sub / args.ref_pairs:.3f} "
        f"ms/pair vs {1e3 * fast_sub / args.ref_pairs:.3f} ms/pair -> "
        f"{ref_sub / fast_sub:.1f}x faster (estimated reference total "
        f"{ref_sub / args.ref_pairs * args.pairs:.1f} s)"
    )


if __name__ == "__main__":
    main()
