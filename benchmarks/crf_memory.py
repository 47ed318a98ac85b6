"""Peak memory of one dense CRF (wsss.refine.crf.dense_crf) per image size, 21 classes.

Usage: python benchmarks/crf_memory.py [--sides 500 1000 1448] [--classes 21]

Each size runs in a fresh child process (random image, softmax-normalised random scores, the
IRN label-unary kernels of config.yaml, 10 iterations); the child's peak resident memory
(``ru_maxrss``) minus that of the same child before the CRF is the CRF's own need. Prints MB per
size and the fitted MB per megapixel (the figure the README gives next to max_image_pixels).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys
import numpy as np
from wsss.refine.crf import dense_crf
side, classes = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
scores = rng.random((classes, side, side), dtype=np.float32)
scores /= scores.sum(0, keepdims=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
params = {"unary": "softmax", "gaussian": {"sxy": 3, "compat": 3},
          "bilateral": {"sxy": 50, "srgb": 5, "compat": 10}, "iterations": 10}
dense_crf(image, scores, params)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps([before, after]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[500, 1000, 1448])
    parser.add_argument("--classes", type=int, default=21)
    args = parser.parse_args()
    points = []
    for side in args.sides:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(side), str(args.classes)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        before, after = json.loads(out.splitlines()[-1])
        megapixels, mb = side * side / 1e6, (after - before) / 1024  # ru_maxrss is in KiB
        points.append((megapixels, mb))
        print(f"{side}x{side} ({megapixels:.2f} MP), {args.classes} classes: {mb:.0f} MB")
    slope = sum(m * p for p, m in points) / sum(p * p for p, _ in points)
    print(f"≈ {slope:.0f} MB per megapixel ({args.classes} classes)")


if __name__ == "__main__":
    main()
