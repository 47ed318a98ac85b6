"""Criss-cross attention (Huang et al., "CCNet: Criss-Cross Attention for Semantic Segmentation",
ICCV 2019 / TPAMI 2020).

Numerical contract (shared by both paths and by ``cuda_ext/``): for every position u = (y, x) the
attention covers Ω(u) = row y ∪ column x, with u itself counted **once** (H + W − 1 positions);
``e(u, v) = Σ_c' Q[c', u] K[c', v]`` (no 1/√d scaling), ``A(u, ·) = softmax_{v ∈ Ω(u)} e(u, ·)`` and
``O[c, u] = Σ_{v ∈ Ω(u)} A(u, v) V[c, v]``.

Two implementations:

* ``"torch"``: batched matrix products along rows and columns with one softmax normaliser shared
  by both segments (the column segment masks its diagonal, so self comes from the row segment).
  A hand-written backward keeps only Q, K, V and the two attention segments
  (N·H·W·(H+W) values) for the backward pass, instead of every intermediate autograd would keep.
  Runs on any device in float32/float64/bfloat16/float16 (softmax in float32 or wider).
* ``"cuda"``: fused kernels of the ``wsss_cca`` extension that never write the attention to
  global memory (see ``cuda_ext/README.md``).
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from wsss.ops._ext import has_cuda_ext, require_cuda_ext

__all__ = ["IMPLS", "RCCA", "CrissCrossAttention", "criss_cross_attention", "resolve_impl"]

log = logging.getLogger(__name__)

IMPLS = ("auto", "torch", "cuda")
_logged_paths: set[str] = set()


def resolve_impl(impl: str, tensor: torch.Tensor) -> str:
    """The path ``criss_cross_attention`` takes for ``impl`` and inputs like ``tensor``.

    ``"auto"`` picks ``"cuda"`` when the tensor is on a CUDA device and the extension imports,
    else ``"torch"``. (The CUDA kernels use no atomics, so they are deterministic and need no
    fallback under ``torch.use_deterministic_algorithms``.)

    Raises:
        ValueError: for an unknown ``impl``.
        RuntimeError: for ``"cuda"`` without the extension (with the build command) or with
            tensors that are not on a CUDA device.
    """
    if impl not in IMPLS:
        raise ValueError(f"unknown criss-cross attention impl {impl!r}; choose from {IMPLS}")
    if impl == "torch":
        return "torch"
    if impl == "auto":
        return "cuda" if tensor.is_cuda and has_cuda_ext() else "torch"
    require_cuda_ext()
    if not tensor.is_cuda:
        raise RuntimeError(
            f"criss-cross attention impl='cuda' needs CUDA tensors, got device {tensor.device}"
        )
    return "cuda"


def _check_inputs(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.dim() != 4:
            raise ValueError(f"{name} must be (N, C, H, W), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if query.shape != key.shape:
        raise ValueError(
            f"query and key must have the same shape, got {tuple(query.shape)} and "
            f"{tuple(key.shape)}"
        )
    n, _, h, w = query.shape
    if (value.shape[0], value.shape[2], value.shape[3]) != (n, h, w):
        raise ValueError(
            f"value {tuple(value.shape)} must share N, H, W with query {tuple(query.shape)}"
        )
    if not query.device == key.device == value.device:
        raise ValueError(
            f"query, key and value must be on one device, got {query.device}, {key.device}, "
            f"{value.device}"
        )


def criss_cross_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *, impl: str = "auto"
) -> torch.Tensor:
    """Aggregate ``value`` over each position's criss-cross path (see the module docstring).

    Args:
        query: ``(N, C', H, W)``.
        key: ``(N, C', H, W)``.
        value: ``(N, C, H, W)``.
        impl: ``"torch"``, ``"cuda"`` or ``"auto"`` (see :func:`resolve_impl`).

    Returns:
        ``(N, C, H, W)`` in the promoted dtype of the inputs; the torch path returns it in
        channels_last memory format (pass channels_last inputs to avoid layout copies).
    """
    _check_inputs(query, key, value)
    dtype = torch.promote_types(torch.promote_types(query.dtype, key.dtype), value.dtype)
    query, key, value = (t.to(dtype) for t in (query, key, value))
    path = resolve_impl(impl, query)
    if path not in _logged_paths:
        _logged_paths.add(path)
        log.info("criss-cross attention: %s path (impl=%r)", path, impl)
    if path == "cuda":
        return torch.ops.wsss_cca.cca_forward(query, key, value)[0]
    return _CrissCrossTorch.apply(query, key, value)


# Everything below works on channels-last views (N, H, W, C): there both a row (W, C) and a
# column (H, C) of a sample are matrices with unit stride, so every product is a plain batched
# GEMM on views, one sample at a time, with no copies of the C-channel tensors. Attention layout:
# rows p_row (N, H, W, W'): p_row[n, y, x, x'] weighs key (y, x') for query (y, x);
# columns p_col (N, W, H, H'): p_col[n, x, y, y'] weighs key (y', x).


def _softmax_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` → a contiguous ``(N, H, W, C)`` (free for channels_last tensors)."""
    return t.permute(0, 2, 3, 1).contiguous()


def _row_col_products(a: torch.Tensor, b: torch.Tensor, *, out_dtype: torch.dtype):
    """Per-line ``a · bᵀ`` for ``(N, H, W, c)`` inputs: rows ``(N, H, W, W')``, columns
    ``(N, W, H, H')``."""
    n, h, w, _ = a.shape
    rows = a.new_empty((n, h, w, w), dtype=out_dtype)
    cols = a.new_empty((n, w, h, h), dtype=out_dtype)
    for i in range(n):
        rows[i] = torch.bmm(a[i], b[i].transpose(1, 2))
        cols[i] = torch.bmm(a[i].transpose(0, 1), b[i].transpose(0, 1).transpose(1, 2))
    return rows, cols


def _weighted_sum(w_row: torch.Tensor, w_col: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``out[u] = Σ_v w(u, v) x[v]`` over the criss-cross path: ``(N, H, W, c)`` → same."""
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        torch.bmm(w_row[i], x[i], out=out[i])
        out[i].transpose(0, 1).baddbmm_(w_col[i], x[i].transpose(0, 1))
    return out


def _attention(qh: torch.Tensor, kh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two attention segments, normalised together over H + W − 1 entries."""
    acc = _softmax_dtype(qh.dtype)
    p_row, p_col = _row_col_products(qh, kh, out_dtype=acc)
    p_col.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))  # self belongs to the row segment
    top = torch.maximum(p_row.amax(-1), p_col.amax(-1).transpose(1, 2))  # (N, H, W)
    p_row.sub_(top.unsqueeze(-1)).exp_()
    p_col.sub_(top.transpose(1, 2).unsqueeze(-1)).exp_()
    total = p_row.sum(-1) + p_col.sum(-1).transpose(1, 2)
    p_row.div_(total.unsqueeze(-1))
    p_col.div_(total.transpose(1, 2).unsqueeze(-1))
    return p_row.to(qh.dtype), p_col.to(qh.dtype)


def _nchw_view(t: torch.Tensor) -> torch.Tensor:
    """A channels-last ``(N, H, W, C)`` tensor seen as ``(N, C, H, W)`` (channels_last strides)."""
    return t.permute(0, 3, 1, 2)


class _CrissCrossTorch(torch.autograd.Function):
    """Criss-cross attention with an explicit backward.

    Given dO, with P the attention and dP(u, v) = Σ_c dO[c, u] V[c, v]:
    dV[c, v] = Σ_u P(u, v) dO[c, u]; dE = P ⊙ (dP − D) with D(u) = Σ_v P(u, v) dP(u, v) (the
    softmax Jacobian over the joint H + W − 1 set); dQ[:, u] = Σ_v dE(u, v) K[:, v];
    dK[:, v] = Σ_u dE(u, v) Q[:, u]. Outputs and gradients are channels_last tensors.
    """

    @staticmethod
    def forward(ctx, query, key, value):  # noqa: D102
        qh, kh, vh = _channels_last(query), _channels_last(key), _channels_last(value)
        p_row, p_col = _attention(qh, kh)
        ctx.save_for_backward(qh, kh, vh, p_row, p_col)
        return _nchw_view(_weighted_sum(p_row, p_col, vh))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):  # noqa: D102
        qh, kh, vh, p_row, p_col = ctx.saved_tensors
        gh = _channels_last(grad_out.to(vh.dtype))
        need_q, need_k, need_v = ctx.needs_input_grad
        grad_q = grad_k = grad_v = None
        t_row, t_col = p_row.transpose(-1, -2), p_col.transpose(-1, -2)
        if need_v:
            grad_v = _nchw_view(_weighted_sum(t_row, t_col, gh))
        if need_q or need_k:
            acc = _softmax_dtype(vh.dtype)
            dp_row, dp_col = _row_col_products(gh, vh, out_dtype=acc)
            pr, pc = p_row.to(acc), p_col.to(acc)
            mean = (pr * dp_row).sum(-1) + (pc * dp_col).sum(-1).transpose(1, 2)  # D(u)
            de_row = dp_row.sub_(mean.unsqueeze(-1)).mul_(pr).to(qh.dtype)
            de_col = dp_col.sub_(mean.transpose(1, 2).unsqueeze(-1)).mul_(pc).to(qh.dtype)
            if need_q:
                grad_q = _nchw_view(_weighted_sum(de_row, de_col, kh))
            if need_k:
                grad_k = _nchw_view(
                    _weighted_sum(de_row.transpose(-1, -2), de_col.transpose(-1, -2), qh)
                )
        return grad_q, grad_k, grad_v


class CrissCrossAttention(nn.Module):
    """One criss-cross attention block: ``γ · CCA(Q x, K x, V x) + x`` (CCNet, §3.1 of the spec).

    Q and K are 1×1 convs to ``in_channels // reduction`` channels, V a 1×1 conv to
    ``in_channels``, all with bias; γ starts at 0, so the block starts as the identity.

    Args:
        in_channels: channels C of the input and output.
        reduction: C / C' (8 in CCNet).
        impl: ``"auto"``, ``"torch"`` or ``"cuda"`` (see :func:`resolve_impl`).
    """

    def __init__(self, in_channels: int, reduction: int = 8, *, impl: str = "auto") -> None:
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"unknown criss-cross attention impl {impl!r}; choose from {IMPLS}")
        if reduction < 1 or in_channels < reduction:
            raise ValueError(
                f"need 1 <= reduction <= in_channels, got reduction {reduction} for "
                f"{in_channels} channels"
            )
        inner = in_channels // reduction
        self.impl = impl
        self.query = nn.Conv2d(in_channels, inner, 1)
        self.key = nn.Conv2d(in_channels, inner, 1)
        self.value = nn.Conv2d(in_channels, in_channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` → ``(N, C, H, W)`` in channels_last memory format."""
        # Channels-last makes the 1×1 convs and the attention's per-line products copy-free.
        x = x.contiguous(memory_format=torch.channels_last)
        out = criss_cross_attention(self.query(x), self.key(x), self.value(x), impl=self.impl)
        return self.gamma * out + x


class RCCA(nn.Module):
    """Recurrent criss-cross attention: one :class:`CrissCrossAttention` applied ``recurrence``
    times with shared weights; two passes connect every position to every other one.

    Args:
        in_channels: channels C.
        reduction: C / C' of the attention block.
        recurrence: number of passes R (2 as in the CCNet paper; the original training script's
            default of 0 silently switched attention off, so configs always set it).
        impl: criss-cross attention path.
    """

    def __init__(
        self, in_channels: int, reduction: int = 8, *, recurrence: int = 2, impl: str = "auto"
    ) -> None:
        super().__init__()
        if recurrence < 1:
            raise ValueError(f"recurrence must be >= 1, got {recurrence!r}")
        self.recurrence = recurrence
        self.attention = CrissCrossAttention(in_channels, reduction, impl=impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` → ``(N, C, H, W)``."""
        for _ in range(self.recurrence):
            x = self.attention(x)
        return x
