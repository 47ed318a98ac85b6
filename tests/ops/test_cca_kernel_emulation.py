"""The CUDA kernels' code, compiled for the CPU (see cca_kernel_emulation.cpp), against the dense
masked-attention oracle. This checks the kernels' index maths, tiling, masking and online softmax
on machines without a GPU; the real CUDA build is checked by the gpu-marked tests."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).parent
KERNELS = HERE.parent.parent / "cuda_ext" / "csrc" / "cuda" / "cca_kernels.cuh"

# (N, C', H, W), C: odd sizes; lines longer than a 32-position tile, C' above the 16-channel
# reduction chunk, C above the 64-channel output tile, and the degenerate H = 1 / W = 1.
CASES = [
    ((1, 3, 5, 7), 5),
    ((2, 4, 9, 6), 3),
    ((1, 2, 1, 5), 2),
    ((2, 2, 4, 1), 2),
    ((1, 17, 35, 33), 70),
]


@pytest.fixture(scope="module")
def emulated(tmp_path_factory):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ not found; cannot compile the kernel emulation")
    lib = tmp_path_factory.mktemp("cca_emulation") / "cca_emulation.so"
    source = HERE / "cca_kernel_emulation.cpp"
    cmd = [
        compiler,
        "-std=c++20",
        "-O2",
        "-shared",
        "-fPIC",
        "-pthread",
        "-Wall",
        "-Wno-unknown-pragmas",
        str(source),
        "-o",
        str(lib),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"compiling {source.name} failed:\n{done.stderr}"
    return ctypes.CDLL(str(lib))


def pointer(a: np.ndarray):
    assert a.flags.c_contiguous
    return a.ctypes.data_as(ctypes.c_void_p)


def run_forward(lib, q, k, v):
    n, ck, h, w = q.shape
    dtype = q.dtype
    out = np.full(v.shape, np.nan, dtype=dtype)
    lse = np.full((n, h, w), np.nan, dtype=dtype)
    fn = lib.cca_forward_f64 if dtype == np.float64 else lib.cca_forward_f32
    fn(
        pointer(q),
        pointer(k),
        pointer(v),
        pointer(out),
        pointer(lse),
        *map(ctypes.c_int64, (n, ck, v.shape[1], h, w)),
    )
    return out, lse


def dense(q, k, v, grad_out):
    """Oracle: attention over the criss-cross mask of a full H·W × H·W energy matrix, float64
    autograd. Returns out, lse and the gradients of q, k, v."""
    q, k, v = (torch.from_numpy(t).double().requires_grad_() for t in (q, k, v))
    n, c, h, w = v.shape
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    mask = (ys[:, None] == ys[None, :]) | (xs[:, None] == xs[None, :])
    e = torch.einsum("ncu,ncv->nuv", q.flatten(2), k.flatten(2)).masked_fill(~mask, float("-inf"))
    out = torch.einsum("nuv,ncv->ncu", torch.softmax(e, -1), v.flatten(2)).view(n, c, h, w)
    grads = torch.autograd.grad(out, (q, k, v), torch.from_numpy(grad_out).double())
    lse = torch.logsumexp(e, -1).view(n, h, w)
    return out.detach().numpy(), lse.detach().numpy(), [g.numpy() for g in grads]


def random_case(shape, channels, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    n, ck, h, w = shape
    q, k = (rng.standard_normal((n, ck, h, w)).astype(dtype) for _ in range(2))
    v, g = (rng.standard_normal((n, channels, h, w)).astype(dtype) for _ in range(2))
    return q, k, v, g


@pytest.mark.parametrize("shape,channels", CASES)
def test_emulated_kernels_match_oracle(emulated, shape, channels):
    q, k, v, g = random_case(shape, channels)
    ref_out, ref_lse, ref_grads = dense(q, k, v, g)
    out, lse = run_forward(emulated, q, k, v)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lse, ref_lse, rtol=0, atol=1e-12)

    delta = np.ascontiguousarray((g * out).sum(1))  # D_q, computed by ATen in cca_cuda.cu
    grads = [np.full(t.shape, np.nan) for t in (q, k, v)]
    n, ck, h, w = shape
    emulated.cca_backward_f64(
        *(pointer(t) for t in (g, q, k, v, lse, delta, *grads)),
        *map(ctypes.c_int64, (n, ck, channels, h, w)),
    )
    for name, ours, theirs in zip(("query", "key", "value"), grads, ref_grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-11, err_msg=name)


def test_emulated_float32_forward(emulated):
    q, k, v, g = random_case((1, 17, 35, 33), 70, dtype=np.float32, seed=1)
    ref_out, ref_lse, _ = dense(q, k, v, g)
    out, lse = run_forward(emulated, q, k, v)
    np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-5, atol=1e-4)
