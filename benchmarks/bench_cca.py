"""Criss-cross attention blocks: time and peak memory, forward and forward+backward.

Compares, at the same shapes and with the same 1×1 Q/K/V convs and residual ``γ·O + x``:

* ``wsss-torch``: :class:`wsss.ops.CrissCrossAttention` with ``impl="torch"``;
* ``wsss-cuda``:  the same block with ``impl="cuda"`` (CUDA device and built extension only);
* ``ccnet-ref``:  CCNet's pure-PyTorch module as its README describes it (spec §3.4: per-axis
  bmm, a −∞ diagonal mask, softmax over the concatenated H + W energies, autograd backward);
* ``non-local``:  a full non-local block (softmax over all H·W positions) of the same widths.

Each case runs in a fresh subprocess. Peak memory is the increase over the memory held before the
first call (inputs and weights excluded): on CPU the process's peak resident set
(``ru_maxrss``), on CUDA ``torch.cuda.max_memory_allocated``. Times are medians.

    .venv/bin/python benchmarks/bench_cca.py                 # CPU, all shapes
    .venv/bin/python benchmarks/bench_cca.py --device cuda   # GPU (adds wsss-cuda)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from wsss.ops import CrissCrossAttention
from wsss.ops._ext import has_cuda_ext

SHAPES = [(1, 512, 97, 97), (2, 512, 97, 97), (1, 512, 33, 33)]
REDUCTION = 8  # C' = 64 at C = 512


class _QKV(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, channels // REDUCTION, 1)
        self.key = nn.Conv2d(channels, channels // REDUCTION, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.full((1,), 0.5))


class CCNetReference(_QKV):
    """CCNet's pure-PyTorch criss-cross block, formulated as in spec §3.4 (device-correct mask)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        q, k, v = self.query(x), self.key(x), self.value(x)

        def columns(t):  # (N·W, C, H)
            return t.permute(0, 3, 1, 2).contiguous().view(n * w, -1, h)

        def rows(t):  # (N·H, C, W)
            return t.permute(0, 2, 1, 3).contiguous().view(n * h, -1, w)

        mask = torch.zeros(h, h, device=x.device, dtype=x.dtype)
        mask.fill_diagonal_(float("-inf"))
        e_h = (torch.bmm(columns(q).transpose(1, 2), columns(k)) + mask).view(n, w, h, h)
        e_w = torch.bmm(rows(q).transpose(1, 2), rows(k)).view(n, h, w, w)
        att = F.softmax(torch.cat([e_h.permute(0, 2, 1, 3), e_w], 3), 3)
        a_h = att[..., :h].permute(0, 2, 1, 3).contiguous().view(n * w, h, h)
        a_w = att[..., h:].contiguous().view(n * h, w, w)
        o_h = torch.bmm(columns(v), a_h.transpose(1, 2)).view(n, w, -1, h).permute(0, 2, 3, 1)
        o_w = torch.bmm(rows(v), a_w.transpose(1, 2)).view(n, h, -1, w).permute(0, 2, 1, 3)
        return self.gamma * (o_h + o_w) + x


class NonLocal(_QKV):
    """Full dot-product self-attention over all H·W positions (Wang et al., CVPR 2018)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)
        k = self.key(x).flatten(2)
        v = self.value(x).flatten(2)
        att = F.softmax(torch.bmm(q.transpose(1, 2), k), -1)  # (N, HW, HW)
        out = torch.bmm(v, att.transpose(1, 2)).view(n, c, h, w)
        return self.gamma * out + x


def build(impl: str, channels: int) -> nn.Module:
    if impl in ("wsss-torch", "wsss-cuda"):
        block = CrissCrossAttention(channels, REDUCTION, impl=impl.removeprefix("wsss-"))
        nn.init.constant_(block.gamma, 0.5)
        return block
    return {"ccnet-ref": CCNetReference, "non-local": NonLocal}[impl](channels)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_case(impl: str, shape: tuple[int, ...], backward: bool, device: str, repeats: int) -> dict:
    """Time one block in this process; return ms (median) and peak extra memory in MiB."""
    dev = torch.device(device)
    torch.manual_seed(0)
    block = build(impl, shape[1]).to(dev)
    x = torch.randn(shape, device=dev, requires_grad=backward)

    def step():
        if backward:
            block(x).sum().backward()
        else:
            with torch.no_grad():
                block(x)

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()  # warm-up; also the call whose peak is measured
    _sync(dev)
    if dev.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024  # KiB → MiB
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        _sync(dev)
        times.append((time.perf_counter() - start) * 1e3)
    return {"ms": statistics.median(times), "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per case")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # impl,N,C,H,W,fwd|fwdbwd (worker)
    args = parser.parse_args()
    repeats = args.repeats or (50 if args.device.startswith("cuda") else 5)
    if args.case:
        impl, *dims, mode = args.case.split(",")
        print(
            json.dumps(
                run_case(impl, tuple(map(int, dims)), mode == "fwdbwd", args.device, repeats)
            )
        )
        return
    impls = ["wsss-torch", "ccnet-ref", "non-local"]
    if args.device.startswith("cuda") and has_cuda_ext():
        impls.insert(1, "wsss-cuda")
    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'shape':<18} {'impl':<11} {'fwd ms':>9} {'fwd MiB':>9} {'f+b ms':>9} {'f+b MiB':>9}")
    for shape in SHAPES:
        for impl in impls:
            cells = []
            for mode in ("fwd", "fwdbwd"):
                case = ",".join([impl, *map(str, shape), mode])
                cmd = [
                    sys.executable,
                    __file__,
                    "--device",
                    args.device,
                    "--case",
                    case,
                    "--repeats",
                    str(repeats),
                ]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode:
                    cells += ["failed", "-"]
                    print(done.stderr.strip().splitlines()[-1], file=sys.stderr)
                    continue
                result = json.loads(done.stdout)
                cells += [f"{result['ms']:.2f}", f"{result['peak_mib']:.0f}"]
            dims = "x".join(map(str, shape))
            print(f"{dims:<18} {impl:<11} " + " ".join(f"{c:>9}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
