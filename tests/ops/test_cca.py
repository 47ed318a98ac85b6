"""Criss-cross attention against a naive per-pixel loop, plus gradients, properties and dispatch."""

from __future__ import annotations

import pytest
import torch

from wsss.ops import RCCA, CrissCrossAttention, _ext, criss_cross_attention, resolve_impl

SHAPES = [(1, 3, 5, 7), (2, 4, 9, 6), (1, 2, 1, 5), (2, 2, 4, 1)]  # (N, C', H, W), odd and H ≠ W


def criss_cross_positions(h: int, w: int, y: int, x: int) -> list[tuple[int, int]]:
    """Row y (self included) then column x without self: H + W − 1 positions."""
    return [(y, xx) for xx in range(w)] + [(yy, x) for yy in range(h) if yy != y]


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The definition, one output pixel at a time: softmax of dot products over Ω(u)."""
    q, k, v = q.detach(), k.detach(), v.detach()
    n, _, h, w = q.shape
    out = torch.zeros(n, v.shape[1], h, w, dtype=torch.float64)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                keys = criss_cross_positions(h, w, y, x)
                energies = [float(q[b, :, y, x].double() @ k[b, :, i, j].double()) for i, j in keys]
                top = max(energies)
                weights = [pow(2.718281828459045, e - top) for e in energies]
                total = sum(weights)
                for (i, j), wt in zip(keys, weights, strict=True):
                    out[b, :, y, x] += wt / total * v[b, :, i, j].double()
    return out


def inputs(shape, *, channels=5, dtype=torch.float64, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    n, ck, h, w = shape
    q = torch.randn(n, ck, h, w, generator=gen, dtype=dtype)
    k = torch.randn(n, ck, h, w, generator=gen, dtype=dtype)
    v = torch.randn(n, channels, h, w, generator=gen, dtype=dtype)
    return [t.requires_grad_(requires_grad) for t in (q, k, v)]


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_naive_loop(shape):
    q, k, v = inputs(shape)
    out = criss_cross_attention(q, k, v, impl="torch")
    torch.testing.assert_close(out, naive_attention(q, k, v), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck(shape):
    q, k, v = inputs(shape, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, c: criss_cross_attention(a, b, c, impl="torch"), (q, k, v)
    )


def test_gradients_match_naive_loop():
    q, k, v = inputs((2, 3, 4, 5), requires_grad=True)
    grad_out = torch.randn(2, 5, 4, 5, dtype=torch.float64)
    ours = torch.autograd.grad(criss_cross_attention(q, k, v, impl="torch"), (q, k, v), grad_out)

    def loop_autograd(q, k, v):  # autograd through the definition, written with tensor ops
        n, _, h, w = q.shape
        out = torch.zeros(n, v.shape[1], h, w, dtype=q.dtype)
        for b in range(n):
            for y in range(h):
                for x in range(w):
                    keys = criss_cross_positions(h, w, y, x)
                    ks = torch.stack([k[b, :, i, j] for i, j in keys])
                    vs = torch.stack([v[b, :, i, j] for i, j in keys])
                    out[b, :, y, x] = torch.softmax(ks @ q[b, :, y, x], 0) @ vs
        return out

    theirs = torch.autograd.grad(loop_autograd(q, k, v), (q, k, v), grad_out)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_self_position_counted_once():
    # Equal energies everywhere → uniform weights 1/(H+W−1). A one-hot value at u itself must
    # then contribute exactly 1/(H+W−1) to u's output (2/(H+W) if self were counted twice).
    h, w = 4, 6
    q = torch.zeros(1, 2, h, w, dtype=torch.float64)
    k = torch.zeros_like(q)
    v = torch.zeros(1, 1, h, w, dtype=torch.float64)
    v[0, 0, 2, 3] = 1.0
    out = criss_cross_attention(q, k, v, impl="torch")
    assert out[0, 0, 2, 3].item() == pytest.approx(1 / (h + w - 1), abs=1e-15)
    # positions sharing neither row nor column with (2, 3) receive nothing
    assert out[0, 0, 0, 0].item() == 0.0


def test_attention_weights_sum_to_one():
    q, k, _ = inputs((2, 3, 5, 4))
    ones = torch.ones(2, 1, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(criss_cross_attention(q, k, ones, impl="torch"), ones)


def test_non_contiguous_inputs():
    q, k, v = inputs((2, 3, 5, 7))
    # permuted-then-permuted-back views with the same values but foreign strides
    qn, kn, vn = (t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) for t in (q, k, v))
    assert not vn.is_contiguous()
    torch.testing.assert_close(
        criss_cross_attention(qn, kn, vn, impl="torch"),
        naive_attention(q, k, v),
        atol=1e-12,
        rtol=0,
    )


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_low_precision_close_to_float64(dtype, atol):
    q, k, v = inputs((2, 4, 6, 5), channels=8)
    out = criss_cross_attention(q.to(dtype), k.to(dtype), v.to(dtype), impl="torch")
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), naive_attention(q, k, v), atol=atol, rtol=0)


def test_float32_backward_close_to_float64():
    q, k, v = inputs((1, 4, 6, 5), channels=8, requires_grad=True)
    g64 = torch.autograd.grad(criss_cross_attention(q, k, v, impl="torch").sum(), (q, k, v))
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    g32 = torch.autograd.grad(
        criss_cross_attention(q32, k32, v32, impl="torch").sum(), (q32, k32, v32)
    )
    for a, b in zip(g32, g64, strict=True):
        torch.testing.assert_close(a.double(), b, atol=1e-4, rtol=1e-4)


def test_module_is_identity_at_init_and_not_after():
    torch.manual_seed(0)
    block = CrissCrossAttention(16, reduction=4, impl="torch").double()
    x = torch.randn(2, 16, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(block(x), x, atol=0, rtol=0)
    with torch.no_grad():
        block.gamma.fill_(0.7)
    expected = 0.7 * naive_attention(block.query(x), block.key(x), block.value(x)) + x
    torch.testing.assert_close(block(x), expected, atol=1e-12, rtol=0)
    assert (block(x) - x).abs().max() > 1e-3


def test_rcca_shares_weights_and_reaches_every_position():
    torch.manual_seed(0)
    h, w = 5, 6
    rcca = RCCA(4, reduction=2, recurrence=2, impl="torch").double()
    assert sum(p.numel() for p in rcca.parameters()) == sum(
        p.numel() for p in rcca.attention.parameters()
    )
    with torch.no_grad():
        rcca.attention.gamma.fill_(1.0)
    x = torch.randn(1, 4, h, w, dtype=torch.float64, requires_grad=True)
    # output at (0, 0) depends on input at (4, 5) (different row and column) only after 2 passes
    for recurrence, reaches in [(1, False), (2, True)]:
        rcca.recurrence = recurrence
        (grad,) = torch.autograd.grad(rcca(x)[0, :, 0, 0].sum(), x)
        assert (grad[0, :, 4, 5].abs().sum() > 0) == reaches
        if recurrence == 2:
            assert (grad[0].abs().sum(0) > 0).all()


def test_rcca_rejects_zero_recurrence():
    with pytest.raises(ValueError, match="recurrence"):
        RCCA(8, recurrence=0)


def test_input_validation():
    q, k, v = inputs((1, 2, 3, 4))
    with pytest.raises(ValueError, match="same shape"):
        criss_cross_attention(q, k[:, :1], v)
    with pytest.raises(ValueError, match="share N, H, W"):
        criss_cross_attention(q, k, v[:, :, :2])
    with pytest.raises(ValueError, match="impl"):
        criss_cross_attention(q, k, v, impl="triton")


def test_auto_on_cpu_picks_torch():
    q, _, _ = inputs((1, 2, 3, 4))
    assert resolve_impl("auto", q) == "torch"


def test_cuda_impl_without_extension_names_the_build_command(monkeypatch):
    monkeypatch.setattr(_ext, "_load", lambda: (None, "ModuleNotFoundError: no wsss_cca"))
    q, k, v = inputs((1, 2, 3, 4))
    with pytest.raises(RuntimeError, match="make cuda-ext"):
        criss_cross_attention(q, k, v, impl="cuda")


def test_cuda_impl_with_cpu_tensors_is_refused(monkeypatch):
    monkeypatch.setattr(_ext, "_load", lambda: (object(), ""))
    q, k, v = inputs((1, 2, 3, 4))
    with pytest.raises(RuntimeError, match="CUDA tensors"):
        criss_cross_attention(q, k, v, impl="cuda")
