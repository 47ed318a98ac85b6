"""IRN random walk at VOC size: sparse walk (wsss) against IRN's dense transition matrix.

Inputs (seeded): a 94×125 boundary map (stride 4 of a 375×500 image) made of the softened edges
of smooth random blobs, and 21 positive smooth random seed maps. Both methods use radius 5,
β = 10, 2⁸ = 256 steps, float32, on CPU, and the same affinities
(:func:`wsss.refine.random_walk.boundary_affinities`):

* ``sparse``: :func:`wsss.refine.random_walk.propagate` — sparse T (1 + 2·34 entries per column),
  256 sparse products;
* ``dense``:  IRN's ``propagate_to_edge`` / ``to_transition_matrix`` (algorithms.md §1.7 b),
  written out here only as the reference: a dense n × n A (n = 11,750) with a unit diagonal,
  A^β, columns normalised, squared 8 times, then v·T.

Each method runs in a fresh subprocess. Peak memory is the increase of the process's peak resident
set (``ru_maxrss``) over the level reached after imports and input creation; time is wall time
(the sparse method: median of 3 calls after the measured first one; the dense method: one call).
Agreement is the fraction of pixels whose argmax over [0.25 background plane; rw / max] (IRN's
labels, at the stride-4 resolution) is the same for both.

The machine this was written on is a shared 2-core box: with OpenMP's default active spin-wait,
when other processes load the cores, every short parallel op of the sparse walk can wait for a
descheduled thread (seen: 0.5 s → 3.5 s per call; without load it makes no difference). The
children therefore run with ``OMP_WAIT_POLICY=PASSIVE`` (both methods, so the comparison stays
fair); ``--omp-wait-policy default`` leaves the variable unset, and the table
also shows the sparse method without it. Both children also flush denormals to zero
(``torch.set_flush_denormal``), as GPUs do by default: from the fifth squaring on, the dense T is
full of denormal floats and x86 GEMM slows down ~30× (the run would take an hour or more).

    .venv/bin/python benchmarks/bench_random_walk.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from wsss.refine.random_walk import boundary_affinities, pair_offsets, pair_validity, propagate

HEIGHT, WIDTH, CLASSES = 94, 125, 21
RADIUS, BETA, EXP_TIMES, BG_THRESHOLD = 5, 10.0, 8, 0.25


def _smooth_fields(count: int, grid: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    low = torch.rand(1, count, *grid, generator=gen)
    return F.interpolate(low, size=(HEIGHT, WIDTH), mode="bicubic", align_corners=False)[0]


def make_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A realistic boundary map (softened blob edges, weak texture) and 21 positive seed maps."""
    gen = torch.Generator().manual_seed(seed)
    regions = _smooth_fields(7, (5, 7), gen).argmax(dim=0)  # smooth random blobs
    edge = torch.zeros(HEIGHT, WIDTH)
    horizontal = regions[:, 1:] != regions[:, :-1]
    vertical = regions[1:, :] != regions[:-1, :]
    edge[:, 1:][horizontal] = edge[:, :-1][horizontal] = 1.0
    edge[1:, :][vertical] = edge[:-1, :][vertical] = 1.0
    blurred = F.avg_pool2d(edge[None, None], 3, stride=1, padding=1, count_include_pad=False)[0, 0]
    texture = 0.15 * _smooth_fields(1, (24, 32), gen)[0] ** 4
    noise = 0.05 * torch.rand(HEIGHT, WIDTH, generator=gen)
    boundary = (0.95 * blurred.clamp(max=1.0) + texture + noise).clamp(0.0, 1.0)
    seeds = _smooth_fields(CLASSES, (4, 5), gen).clamp(min=0.0) ** 3 + 1e-3
    return seeds.contiguous(), boundary.contiguous()


def sparse_scores(seeds: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    return propagate(
        seeds, boundary, radius=RADIUS, beta=BETA, exp_times=EXP_TIMES, bg_threshold=BG_THRESHOLD
    )


def dense_scores(seeds: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """IRN's dense formulation (reference only): never use this for real images."""
    start = time.perf_counter()
    height, width = boundary.shape
    n = height * width
    offsets = pair_offsets(RADIUS)
    aff = boundary_affinities(boundary, RADIUS)
    valid = pair_validity(height, width, offsets)
    p, y, x = valid.nonzero(as_tuple=True)
    shift = torch.tensor(offsets)
    src = y * width + x
    dst = src + shift[p, 0] * width + shift[p, 1]
    trans = torch.eye(n)  # dense symmetric A with a unit diagonal
    trans[src, dst] = aff[valid]
    trans[dst, src] = aff[valid]
    trans.pow_(BETA)
    trans.div_(trans.sum(dim=0, keepdim=True))
    for i in range(EXP_TIMES):
        trans = trans @ trans
        print(
            f"  dense: squaring {i + 1}/{EXP_TIMES} done at {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    x0 = (seeds * (1.0 - boundary)).reshape(seeds.shape[0], n)
    walked = (x0 @ trans).reshape(seeds.shape)
    walked = walked / walked.max()
    return torch.cat([torch.full((1, height, width), BG_THRESHOLD), walked])


def run_case(method: str, seed: int, out_path: str) -> dict:
    torch.set_grad_enabled(False)
    torch.set_flush_denormal(True)  # as GPUs do; see the module docstring
    warnings.filterwarnings("ignore", category=UserWarning)
    seeds, boundary = make_inputs(seed)
    fn = {"sparse": sparse_scores, "dense": dense_scores}[method]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    scores = fn(seeds, boundary)
    first = time.perf_counter() - start
    peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # KiB → MiB
    times = [first]
    if method == "sparse":
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn(seeds, boundary)
            times.append(time.perf_counter() - start)
    np.save(out_path, scores.numpy())
    return {"seconds": statistics.median(times), "first_s": first, "peak_mib": peak_mib}


def spawn(method: str, seed: int, out_path: str, policy: str | None) -> dict:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, __file__, "--case", method, "--seed", str(seed), "--out", out_path]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--omp-wait-policy",
        default="PASSIVE",
        help="OMP_WAIT_POLICY for the children ('default' leaves it unset)",
    )
    parser.add_argument("--case", choices=["sparse", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.seed, args.out)))
        return
    policy = None if args.omp_wait_policy == "default" else args.omp_wait_policy
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU float32; "
        f"map {HEIGHT}x{WIDTH} (n = {HEIGHT * WIDTH}), K = {CLASSES}, radius {RADIUS}, "
        f"beta {BETA:g}, {2**EXP_TIMES} steps; OMP_WAIT_POLICY={policy or 'unset'}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, f"{name}.npy") for name in ("sparse", "active", "dense")}
        results = {"sparse": spawn("sparse", args.seed, paths["sparse"], policy)}
        if policy is not None:
            results["active"] = spawn("sparse", args.seed, paths["active"], None)
        print(f"sparse done in {results['sparse']['seconds']:.2f} s; dense (minutes) ...")
        results["dense"] = spawn("dense", args.seed, paths["dense"], policy)
        scores = {name: np.load(path) for name, path in paths.items() if name in results}
    labels = {name: s.argmax(axis=0) for name, s in scores.items()}
    agree = float((labels["sparse"] == labels["dense"]).mean())
    diff = float(np.abs(scores["sparse"] - scores["dense"]).max())

    names = {
        "sparse": "sparse (wsss)",
        "active": "sparse, OMP_WAIT_POLICY unset",
        "dense": "dense (IRN reference)",
    }
    print(f"\n{'method':<32} {'time s':>9} {'peak MiB':>9}")
    for key, result in results.items():
        print(f"{names[key]:<32} {result['seconds']:>9.2f} {result['peak_mib']:>9.0f}")
    speedup = results["dense"]["seconds"] / results["sparse"]["seconds"]
    memory = results["dense"]["peak_mib"] / max(results["sparse"]["peak_mib"], 1e-9)
    print(
        f"\nspeed-up dense/sparse: {speedup:.0f}x (first sparse call: "
        f"{results['dense']['seconds'] / results['sparse']['first_s']:.0f}x)"
    )
    if "active" in results:
        print(
            f"speed-up dense/sparse with OMP_WAIT_POLICY unset for sparse: "
            f"{results['dense']['seconds'] / results['active']['seconds']:.0f}x"
        )
    print(f"memory dense/sparse: {memory:.1f}x")
    print(
        f"label agreement: {100 * agree:.3f} % of {labels['sparse'].size} pixels; "
        f"max |score difference| {diff:.2e}"
    )
    bars = [
        ("sparse >= 100x faster than dense", speedup >= 100),
        ("sparse peak <= 1 GB", results["sparse"]["peak_mib"] <= 1024),
        ("agreement >= 99.9 %", agree >= 0.999),
    ]
    for text, ok in bars:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")


if __name__ == "__main__":
    main()
