"""wsss_cca: fused CUDA kernels for criss-cross attention, registered as ``torch.ops.wsss_cca``.

Importing this package loads the compiled library (which registers the op schemas and CUDA
kernels) and adds the autograd and fake-tensor rules. Use it through
``wsss.ops.criss_cross_attention(..., impl="cuda" | "auto")``.
"""

from __future__ import annotations

import torch

from wsss_cca import _C  # noqa: F401  (registers torch.ops.wsss_cca.*)

__all__ = ["cca_forward", "cca_backward"]


def cca_forward(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(out, lse)``: the aggregated map ``(N, C, H, W)`` and the log-sum-exp ``(N, H, W)``."""
    return torch.ops.wsss_cca.cca_forward(query, key, value)


def cca_backward(
    grad_out: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of query, key and value given the gradient of ``out``."""
    return torch.ops.wsss_cca.cca_backward(grad_out, query, key, value, out, lse)


def _lse_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


@torch.library.register_fake("wsss_cca::cca_forward")
def _cca_forward_fake(query, key, value):
    n, _, h, w = query.shape
    out = torch.empty_like(value, memory_format=torch.contiguous_format)
    return out, query.new_empty((n, h, w), dtype=_lse_dtype(query.dtype))


@torch.library.register_fake("wsss_cca::cca_backward")
def _cca_backward_fake(grad_out, query, key, value, out, lse):
    return tuple(
        torch.empty_like(t, memory_format=torch.contiguous_format) for t in (query, key, value)
    )


def _setup_context(ctx, inputs, output):
    query, key, value = inputs
    out, lse = output
    ctx.mark_non_differentiable(lse)
    ctx.save_for_backward(query, key, value, out, lse)


def _backward(ctx, grad_out, _grad_lse):
    query, key, value, out, lse = ctx.saved_tensors
    return cca_backward(grad_out, query, key, value, out, lse)


torch.library.register_autograd("wsss_cca::cca_forward", _backward, setup_context=_setup_context)
