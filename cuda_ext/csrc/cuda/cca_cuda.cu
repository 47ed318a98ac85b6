// Host side of the wsss_cca CUDA ops: checks, launches on the current stream, registration.
// The kernels and the algorithm are in cca_kernels.cuh.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "cca_kernels.cuh"

namespace wsss_cca {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_inputs(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value) {
  TORCH_CHECK(query.is_cuda() && key.is_cuda() && value.is_cuda(),
              "wsss_cca: query, key and value must be CUDA tensors");
  TORCH_CHECK(query.device() == key.device() && key.device() == value.device(),
              "wsss_cca: query, key and value must be on one device");
  TORCH_CHECK(query.dim() == 4 && value.dim() == 4, "wsss_cca: expected (N, C, H, W) tensors");
  TORCH_CHECK(query.sizes() == key.sizes(), "wsss_cca: query ", query.sizes(), " and key ",
              key.sizes(), " differ");
  TORCH_CHECK(value.size(0) == query.size(0) && value.size(2) == query.size(2) &&
                  value.size(3) == query.size(3),
              "wsss_cca: value ", value.sizes(), " must share N, H, W with query ", query.sizes());
  TORCH_CHECK(query.scalar_type() == key.scalar_type() && key.scalar_type() == value.scalar_type(),
              "wsss_cca: query, key and value must have one dtype");
  TORCH_CHECK(query.size(2) < 65536 * kTileA && query.size(3) < 65536 * kTileA,
              "wsss_cca: H and W must be below ", 65536 * kTileA);
}

// Runs the row pass (writes) then the column pass (accumulates) of one Mode.
template <typename scalar_t, Mode mode>
void launch_pass(const PassTensors& t, const at::Tensor& query, const at::Tensor& value,
                 int64_t out_channels) {
  const int64_t n = query.size(0), ck = query.size(1), h = query.size(2), w = query.size(3);
  const auto stream = at::cuda::getCurrentCUDAStream();
  int pass = 0;
  for (const Lines& lines : {rows_of(h, w), columns_of(h, w)}) {
    const dim3 grid(n * lines.per_sample, ceil_div(lines.length, kTileA),
                    ceil_div(out_channels, kTileC));
    line_pass_kernel<scalar_t, at::opmath_type<scalar_t>, mode><<<grid, kThreads, 0, stream>>>(
        t, ck, value.size(1), out_channels, h * w, lines, pass++ > 0);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

std::tuple<at::Tensor, at::Tensor> cca_forward_cuda(const at::Tensor& query_in,
                                                    const at::Tensor& key_in,
                                                    const at::Tensor& value_in) {
  check_inputs(query_in, key_in, value_in);
  const c10::cuda::CUDAGuard guard(query_in.device());
  const auto query = query_in.contiguous(), key = key_in.contiguous(),
             value = value_in.contiguous();
  const int64_t n = query.size(0), h = query.size(2), w = query.size(3);
  auto out = at::empty_like(value, at::MemoryFormat::Contiguous);
  auto lse = at::empty({n, h, w}, query.options().dtype(at::toOpMathType(query.scalar_type())));
  if (out.numel() == 0 || query.size(1) == 0) return {out.zero_(), lse.zero_()};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.scalar_type(), "cca_forward",
                                  [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto stream = at::cuda::getCurrentCUDAStream();
    bool merge = false;
    for (const Lines& lines : {rows_of(h, w), columns_of(h, w)}) {
      const dim3 grid(n * lines.per_sample, ceil_div(lines.length, kTileA));
      line_logsumexp_kernel<scalar_t, acc_t><<<grid, kThreads, 0, stream>>>(
          query.data_ptr<scalar_t>(), key.data_ptr<scalar_t>(), lse.data_ptr<acc_t>(),
          query.size(1), h * w, lines, merge);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      merge = true;
    }
    const PassTensors t{query.data_ptr(), key.data_ptr(), value.data_ptr(), nullptr,
                        value.data_ptr(), lse.data_ptr(), nullptr, out.data_ptr()};
    launch_pass<scalar_t, Mode::Forward>(t, query, value, value.size(1));
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> cca_backward_cuda(
    const at::Tensor& grad_out_in, const at::Tensor& query_in, const at::Tensor& key_in,
    const at::Tensor& value_in, const at::Tensor& out_in, const at::Tensor& lse_in) {
  check_inputs(query_in, key_in, value_in);
  TORCH_CHECK(grad_out_in.sizes() == value_in.sizes() && out_in.sizes() == value_in.sizes(),
              "wsss_cca: grad_out and out must have the shape of value ", value_in.sizes());
  const c10::cuda::CUDAGuard guard(query_in.device());
  const auto opmath = at::toOpMathType(query_in.scalar_type());
  TORCH_CHECK(lse_in.scalar_type() == opmath, "wsss_cca: lse must be ", opmath);
  const auto query = query_in.contiguous(), key = key_in.contiguous(),
             value = value_in.contiguous(), lse = lse_in.contiguous();
  const auto grad_out = grad_out_in.to(value.scalar_type()).contiguous();
  // D_q = Σ_c dO[c, q] O[c, q]: the softmax Jacobian's correction term over the joint set
  const auto delta = (grad_out.to(opmath) * out_in.to(opmath)).sum(1).contiguous();
  auto grad_query = at::empty_like(query, at::MemoryFormat::Contiguous);
  auto grad_key = at::empty_like(key, at::MemoryFormat::Contiguous);
  auto grad_value = at::empty_like(value, at::MemoryFormat::Contiguous);
  if (value.numel() == 0 || query.size(1) == 0) {
    return {grad_query.zero_(), grad_key.zero_(), grad_value.zero_()};
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.scalar_type(), "cca_backward",
                                  [&] {
    PassTensors t{query.data_ptr(), key.data_ptr(), value.data_ptr(), grad_out.data_ptr(),
                  grad_out.data_ptr(), lse.data_ptr(), delta.data_ptr(), grad_value.data_ptr()};
    launch_pass<scalar_t, Mode::GradValue>(t, query, value, value.size(1));
    t.source = key.data_ptr();
    t.out = grad_query.data_ptr();
    launch_pass<scalar_t, Mode::GradQuery>(t, query, value, query.size(1));
    t.source = query.data_ptr();
    t.out = grad_key.data_ptr();
    launch_pass<scalar_t, Mode::GradKey>(t, query, value, query.size(1));
  });
  return {grad_query, grad_key, grad_value};
}

}  // namespace

TORCH_LIBRARY_IMPL(wsss_cca, CUDA, m) {
  m.impl("cca_forward", &cca_forward_cuda);
  m.impl("cca_backward", &cca_backward_cuda);
}

}  // namespace wsss_cca
