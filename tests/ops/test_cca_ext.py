"""The wsss_cca extension: op registration (on CPU, through test-only reference kernels) and the
CUDA kernels against the dense masked-attention oracle (GPU only)."""

from __future__ import annotations

import pytest
import torch

from wsss.ops import CrissCrossAttention, criss_cross_attention

wsss_cca = pytest.importorskip(
    "wsss_cca", reason="wsss_cca not built (make cuda-ext); the registration tests need it"
)

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def criss_cross_mask(h: int, w: int, device=None) -> torch.Tensor:
    """(HW, HW) boolean: key v is in query u's criss-cross set (same row or same column)."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    mask = (ys[:, None] == ys[None, :]) | (xs[:, None] == xs[None, :])
    return mask.to(device)


def dense_energies(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Masked non-local energies (N, HW, HW) in float64, −inf outside the criss-cross set."""
    n, _, h, w = q.shape
    e = torch.einsum("ncu,ncv->nuv", q.double().flatten(2), k.double().flatten(2))
    return e.masked_fill(~criss_cross_mask(h, w, q.device), float("-inf"))


def dense_forward(q, k, v):
    """Oracle (spec §3.5): full attention restricted to the criss-cross mask. → (out, lse)."""
    n, c, h, w = v.shape
    e = dense_energies(q, k)
    out = torch.einsum("nuv,ncv->ncu", torch.softmax(e, -1), v.double().flatten(2))
    return out.view(n, c, h, w), torch.logsumexp(e, -1).view(n, h, w)


def dense_backward(grad_out, q, k, v):
    """Gradients of the oracle by the dense attention formulas."""
    n, c, h, w = v.shape
    a = torch.softmax(dense_energies(q, k), -1)  # (N, HW, HW)
    g, vv = grad_out.double().flatten(2), v.double().flatten(2)
    grad_v = torch.einsum("nuv,ncu->ncv", a, g)
    grad_a = torch.einsum("ncu,ncv->nuv", g, vv)
    grad_e = a * (grad_a - (a * grad_a).sum(-1, keepdim=True))
    grad_q = torch.einsum("nuv,ncv->ncu", grad_e, k.double().flatten(2))
    grad_k = torch.einsum("nuv,ncu->ncv", grad_e, q.double().flatten(2))
    shape_qk = (n, q.shape[1], h, w)
    return grad_q.view(shape_qk), grad_k.view(shape_qk), grad_v.view(n, c, h, w)


@pytest.fixture(scope="module")
def cpu_reference_kernels():
    """Registers the oracle as the ops' CPU kernels, so that the Python-side registration
    (schema, fake tensors, autograd) can be exercised without a GPU."""
    lib = torch.library.Library("wsss_cca", "IMPL")

    def forward(q, k, v):
        out, lse = dense_forward(q, k, v)
        lse_dtype = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
        return out.to(v.dtype), lse.to(lse_dtype)

    def backward(grad_out, q, k, v, out, lse):
        return tuple(t.to(q.dtype) for t in dense_backward(grad_out, q, k, v))

    lib.impl("cca_forward", forward, "CPU")
    lib.impl("cca_backward", backward, "CPU")
    yield
    lib._destroy()


def sample(shape, channels, *, device="cpu", dtype=torch.float64, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    n, ck, h, w = shape
    tensors = [
        torch.randn(n, ck, h, w, generator=gen, dtype=dtype),
        torch.randn(n, ck, h, w, generator=gen, dtype=dtype),
        torch.randn(n, channels, h, w, generator=gen, dtype=dtype),
    ]
    return [t.to(device).requires_grad_(requires_grad) for t in tensors]


def test_oracle_agrees_with_the_torch_path():
    q, k, v = sample((2, 3, 5, 4), 6)
    torch.testing.assert_close(
        dense_forward(q, k, v)[0], criss_cross_attention(q, k, v, impl="torch"), atol=1e-12, rtol=0
    )


@pytest.mark.usefixtures("cpu_reference_kernels")
def test_registration_opcheck():
    for args in (sample((1, 2, 3, 4), 3, requires_grad=True), sample((2, 3, 5, 1), 2)):
        torch.library.opcheck(torch.ops.wsss_cca.cca_forward.default, tuple(args))


@pytest.mark.usefixtures("cpu_reference_kernels")
def test_registered_autograd_uses_the_backward_op():
    q, k, v = sample((2, 3, 4, 5), 4, requires_grad=True)
    grad_out = torch.randn(2, 4, 4, 5, dtype=torch.float64)
    out, lse = wsss_cca.cca_forward(q, k, v)
    assert not lse.requires_grad
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    for ours, theirs in zip(grads, dense_backward(grad_out, q, k, v), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)


@pytest.mark.usefixtures("cpu_reference_kernels")
def test_fake_tensor_shapes_and_dtypes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        q = torch.empty(2, 8, 9, 7, dtype=torch.bfloat16)
        out, lse = torch.ops.wsss_cca.cca_forward(q, q, torch.empty(2, 16, 9, 7, dtype=q.dtype))
        assert out.shape == (2, 16, 9, 7) and out.dtype == torch.bfloat16
        assert lse.shape == (2, 9, 7) and lse.dtype == torch.float32


# --------------------------------------------------------------------------- CUDA kernels

GPU_SHAPES = [(1, 3, 5, 7), (2, 4, 9, 6), (1, 8, 1, 33), (2, 8, 40, 1), (2, 16, 37, 45)]


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("channels", [4, 30, 71])
def test_cuda_forward_float64(shape, channels):
    q, k, v = sample(shape, channels, device="cuda")
    out, lse = wsss_cca.cca_forward(q, k, v)
    ref_out, ref_lse = dense_forward(q, k, v)
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=0)
    torch.testing.assert_close(lse, ref_lse, atol=1e-10, rtol=0)


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_cuda_matches_torch_path(dtype, atol):
    q, k, v = sample((2, 8, 33, 65), 64, device="cuda", dtype=torch.float32)
    q, k, v = (t.to(dtype) for t in (q, k, v))
    ours = criss_cross_attention(q, k, v, impl="cuda")
    theirs = criss_cross_attention(q, k, v, impl="torch")
    assert ours.dtype == dtype
    torch.testing.assert_close(ours.float(), theirs.float(), atol=atol, rtol=1e-4)


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
def test_cuda_gradients_match_oracle(shape):
    q, k, v = sample(shape, 30, device="cuda", requires_grad=True)
    grad_out = torch.randn(shape[0], 30, *shape[2:], dtype=torch.float64, device="cuda")
    out = criss_cross_attention(q, k, v, impl="cuda")
    grads = torch.autograd.grad(out, (q, k, v), grad_out)
    for ours, theirs in zip(grads, dense_backward(grad_out, q, k, v), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)


@needs_gpu
@pytest.mark.gpu
def test_cuda_gradcheck_and_opcheck():
    q, k, v = sample((2, 3, 4, 5), 3, device="cuda", requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, c: criss_cross_attention(a, b, c, impl="cuda"), (q, k, v)
    )
    torch.library.opcheck(torch.ops.wsss_cca.cca_forward.default, (q, k, v))


@needs_gpu
@pytest.mark.gpu
def test_cuda_is_deterministic():
    q, k, v = sample((2, 8, 37, 29), 64, device="cuda", dtype=torch.float32, requires_grad=True)
    grads = [
        torch.autograd.grad(criss_cross_attention(q, k, v, impl="cuda").sum(), (q, k, v))
        for _ in range(2)
    ]
    for a, b in zip(*grads, strict=True):
        assert torch.equal(a, b)


@needs_gpu
@pytest.mark.gpu
def test_cuda_module_parity():
    torch.manual_seed(0)
    torch_block = CrissCrossAttention(64, impl="torch").cuda()
    with torch.no_grad():
        torch_block.gamma.fill_(0.5)
    cuda_block = CrissCrossAttention(64, impl="cuda").cuda()
    cuda_block.load_state_dict(torch_block.state_dict())
    x = torch.randn(2, 64, 21, 19, device="cuda")
    outs, grads = [], []
    for block in (torch_block, cuda_block):
        out = block(x)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), list(block.parameters())))
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-4)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
