// Runs the CUDA kernels of cuda_ext/csrc/cuda/cca_kernels.cuh on the CPU, for tests without a GPU.
//
// A thread block is emulated by kThreads std::threads that share the kernel's `__shared__` arrays
// (function statics; blocks run one after another) and meet at a std::barrier for every
// __syncthreads(), so tiling, masking, the online softmax and barrier placement are exercised as
// written. The launch sequence mirrors cca_cuda.cu (row pass, then the column pass accumulating).
// Built by tests/ops/test_cca_kernel_emulation.py with g++ -std=c++20 -pthread.

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};
thread_local Dim3 threadIdx;
thread_local Dim3 blockIdx;
static std::barrier<>* block_barrier = nullptr;

#define __global__
#define __device__
#define __launch_bounds__(n)
#define __shared__ static
#define __syncthreads() block_barrier->arrive_and_wait()
using std::log;
using std::log1p;
using std::max;
using std::min;

#include "../../cuda_ext/csrc/cuda/cca_kernels.cuh"

namespace {

using namespace wsss_cca;

template <typename Kernel>
void launch(Dim3 grid, Kernel kernel) {
  // kThreads persistent threads walk the grid block by block in lockstep.
  std::barrier<> barrier(kThreads);
  block_barrier = &barrier;
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < static_cast<unsigned>(kThreads); ++t) {
    threads.emplace_back([&, t] {
      threadIdx = {t, 0, 0};
      for (unsigned z = 0; z < grid.z; ++z) {
        for (unsigned y = 0; y < grid.y; ++y) {
          for (unsigned x = 0; x < grid.x; ++x) {
            blockIdx = {x, y, z};
            kernel();
            barrier.arrive_and_wait();  // the next block may reuse the shared arrays
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

unsigned ceil_div(int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); }

template <typename T, Mode mode>
void pass(const PassTensors& t, int64_t n, int64_t ck, int64_t c, int64_t h, int64_t w,
          int64_t out_channels) {
  bool accumulate = false;
  for (const Lines& lines : {rows_of(h, w), columns_of(h, w)}) {
    const Dim3 grid{static_cast<unsigned>(n * lines.per_sample), ceil_div(lines.length, kTileA),
                    ceil_div(out_channels, kTileC)};
    launch(grid, [&] {
      line_pass_kernel<T, T, mode>(t, ck, c, out_channels, h * w, lines, accumulate);
    });
    accumulate = true;
  }
}

template <typename T>
void forward(const T* q, const T* k, const T* v, T* out, T* lse, int64_t n, int64_t ck,
             int64_t c, int64_t h, int64_t w) {
  bool merge = false;
  for (const Lines& lines : {rows_of(h, w), columns_of(h, w)}) {
    const Dim3 grid{static_cast<unsigned>(n * lines.per_sample), ceil_div(lines.length, kTileA),
                    1};
    launch(grid, [&] { line_logsumexp_kernel<T, T>(q, k, lse, ck, h * w, lines, merge); });
    merge = true;
  }
  const PassTensors t{q, k, v, nullptr, v, lse, nullptr, out};
  pass<T, Mode::Forward>(t, n, ck, c, h, w, c);
}

template <typename T>
void backward(const T* g, const T* q, const T* k, const T* v, const T* lse, const T* delta,
              T* gq, T* gk, T* gv, int64_t n, int64_t ck, int64_t c, int64_t h, int64_t w) {
  PassTensors t{q, k, v, g, g, lse, delta, gv};
  pass<T, Mode::GradValue>(t, n, ck, c, h, w, c);
  t.source = k;
  t.out = gq;
  pass<T, Mode::GradQuery>(t, n, ck, c, h, w, ck);
  t.source = q;
  t.out = gk;
  pass<T, Mode::GradKey>(t, n, ck, c, h, w, ck);
}

}  // namespace

extern "C" {
void cca_forward_f64(const double* q, const double* k, const double* v, double* out, double* lse,
                     int64_t n, int64_t ck, int64_t c, int64_t h, int64_t w) {
  forward(q, k, v, out, lse, n, ck, c, h, w);
}
void cca_forward_f32(const float* q, const float* k, const float* v, float* out, float* lse,
                     int64_t n, int64_t ck, int64_t c, int64_t h, int64_t w) {
  forward(q, k, v, out, lse, n, ck, c, h, w);
}
void cca_backward_f64(const double* g, const double* q, const double* k, const double* v,
                      const double* lse, const double* delta, double* gq, double* gk, double* gv,
                      int64_t n, int64_t ck, int64_t c, int64_t h, int64_t w) {
  backward(g, q, k, v, lse, delta, gq, gk, gv, n, ck, c, h, w);
}
}
