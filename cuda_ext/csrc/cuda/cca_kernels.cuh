// Device code of the fused criss-cross attention kernels (forward and backward).
//
// The attention of position u covers row y(u) and column x(u), self counted once (numerical
// contract in ../../README.md). Every quantity splits into a row pass and a column pass over
// "lines" (one row or one column of one sample); the softmax normaliser is shared, so it is
// computed first (log-sum-exp over both passes) and each pass then works with final weights
//     P(q, k) = exp(Q_q · K_k − lse_q).
// The (N, H+W−1, H, W) attention tensor is never written to global memory: each block recomputes
// the 32 × 32 weight tile it needs from Q and K tiles staged in shared memory (flash-attention
// style), and the backward uses the symmetry of the criss-cross set (v ∈ Ω(u) ⇔ u ∈ Ω(v)) to
// gather every gradient from its own line, so there are no atomics and results are deterministic.
//
// Backward (given dO; D_q = Σ_c dO[c, q] O[c, q] and dP(q, k) = Σ_c dO[c, q] V[c, k]):
//     dV[:, k] = Σ_q P(q, k) dO[:, q]
//     dQ[:, q] = Σ_k P(q, k) (dP(q, k) − D_q) K[:, k]
//     dK[:, k] = Σ_q P(q, k) (dP(q, k) − D_q) Q[:, q]
//
// Plain CUDA C++ without ATen (the accumulation type is a template parameter), so that
// tests/ops/test_cca_kernel_emulation.py can also compile it for the CPU and check it there.

#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace wsss_cca {

constexpr int kTileA = 32;     // output positions of a block (along its line)
constexpr int kTileB = 32;     // summed positions per step
constexpr int kTileC = 64;     // output channels of a block
constexpr int kChunk = 16;     // reduction channels staged per step
constexpr int kThreads = 256;  // 16 × 16: ty = tid / 16, tx = tid % 16

// What a line pass computes; "a" indexes the block's outputs, "b" the summed positions.
enum class Mode {
  Forward,    // out[:, q] = Σ_k P(q, k) V[:, k]             (a = q, b = k)
  GradValue,  // dV[:, k]  = Σ_q P(q, k) dO[:, q]            (a = k, b = q)
  GradQuery,  // dQ[:, q]  = Σ_k dE(q, k) K[:, k]            (a = q, b = k)
  GradKey,    // dK[:, k]  = Σ_q dE(q, k) Q[:, q]            (a = k, b = q)
};

constexpr bool a_is_query(Mode m) { return m == Mode::Forward || m == Mode::GradQuery; }
constexpr bool needs_grad_energy(Mode m) { return m == Mode::GradQuery || m == Mode::GradKey; }

// Rows: line l = y, positions x (step 1). Columns: line l = x, positions y (step W), self skipped.
struct Lines {
  int64_t per_sample;  // lines per sample: H for rows, W for columns
  int64_t stride;      // offset between lines: W for rows, 1 for columns
  int64_t step;        // offset between positions: 1 for rows, W for columns
  int length;          // positions per line: W for rows, H for columns
  bool skip_self;
};

inline Lines rows_of(int64_t h, int64_t w) { return {h, w, 1, static_cast<int>(w), false}; }
inline Lines columns_of(int64_t h, int64_t w) { return {w, 1, w, static_cast<int>(h), true}; }

// Offset of (channel c, position p) of the block's line in an (N, channels, H, W) tensor.
struct LineIndex {
  int64_t sample, start, step, plane;
  __device__ int64_t operator()(int64_t channels, int64_t c, int p) const {
    return (sample * channels + c) * plane + start + p * step;
  }
};

__device__ inline LineIndex line_index(const Lines& lines, int64_t plane) {
  const int64_t line = blockIdx.x;
  return {line / lines.per_sample, (line % lines.per_sample) * lines.stride, lines.step, plane};
}

template <typename T>
__device__ inline T device_exp(T x);
template <>
__device__ inline float device_exp<float>(float x) { return expf(x); }
template <>
__device__ inline double device_exp<double>(double x) { return exp(x); }

// acc[i][j] += Σ_c A[c, a0 + ty + 16 i] · B[c, b0 + tx + 16 j] over `channels` channels,
// staging kChunk channels of both operands in shared memory at a time (zero outside the line).
template <typename scalar_t, typename acc_t>
__device__ void tile_dot(acc_t (&acc)[2][2], const scalar_t* a_src, const scalar_t* b_src,
                         int64_t channels, const LineIndex& at, int length, int a0, int b0,
                         acc_t (&sa)[kChunk][kTileA], acc_t (&sb)[kChunk][kTileB]) {
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  for (int64_t c0 = 0; c0 < channels; c0 += kChunk) {
    for (int idx = tid; idx < kChunk * kTileA; idx += kThreads) {
      const int c = idx / kTileA, p = idx % kTileA;
      const bool inside = c0 + c < channels;
      sa[c][p] = inside && a0 + p < length ? static_cast<acc_t>(a_src[at(channels, c0 + c, a0 + p)])
                                           : acc_t(0);
      sb[c][p] = inside && b0 + p < length ? static_cast<acc_t>(b_src[at(channels, c0 + c, b0 + p)])
                                           : acc_t(0);
    }
    __syncthreads();
#pragma unroll
    for (int c = 0; c < kChunk; ++c) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 2; ++j) acc[i][j] += sa[c][ty + 16 * i] * sb[c][tx + 16 * j];
      }
    }
    __syncthreads();
  }
}

// lse[q] over one pass (rows or columns); the column pass merges into the row pass's value.
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    line_logsumexp_kernel(const scalar_t* query, const scalar_t* key, acc_t* lse, int64_t key_channels, int64_t plane,
                          Lines lines, bool merge) {
  __shared__ acc_t sa[kChunk][kTileA];
  __shared__ acc_t sb[kChunk][kTileB];
  __shared__ acc_t energy[kTileA][kTileB + 1];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int a0 = blockIdx.y * kTileA;
  const LineIndex at = line_index(lines, plane);
  const acc_t neg_inf = -std::numeric_limits<acc_t>::infinity();
  acc_t running_max = neg_inf, running_sum = 0;  // used by threads tid < kTileA (one query each)

  for (int b0 = 0; b0 < lines.length; b0 += kTileB) {
    acc_t e[2][2] = {{0, 0}, {0, 0}};
    tile_dot(e, query, key, key_channels, at, lines.length, a0, b0, sa, sb);
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        const int a = a0 + ty + 16 * i, b = b0 + tx + 16 * j;
        const bool valid = a < lines.length && b < lines.length && !(lines.skip_self && a == b);
        energy[ty + 16 * i][tx + 16 * j] = valid ? e[i][j] : neg_inf;
      }
    }
    __syncthreads();
    if (tid < kTileA) {
      acc_t tile_max = neg_inf;
      for (int b = 0; b < kTileB; ++b) tile_max = max(tile_max, energy[tid][b]);
      if (tile_max > neg_inf) {
        const acc_t new_max = max(running_max, tile_max);
        acc_t sum = running_sum * device_exp(running_max - new_max);  // exp(−inf) = 0 at start
        for (int b = 0; b < kTileB; ++b) sum += device_exp(energy[tid][b] - new_max);
        running_max = new_max;
        running_sum = sum;
      }
    }
    __syncthreads();
  }
  if (tid < kTileA && a0 + tid < lines.length) {
    const int64_t offset = at(1, 0, a0 + tid);
    acc_t value = running_sum > 0 ? running_max + log(running_sum) : neg_inf;
    if (merge && value > neg_inf) {
      const acc_t other = lse[offset];
      const acc_t hi = max(other, value), lo = min(other, value);
      value = hi + log1p(device_exp(lo - hi));
    } else if (merge) {
      value = lse[offset];
    }
    lse[offset] = value;
  }
}

struct PassTensors {
  const void* query;     // (N, Ck, H, W)
  const void* key;       // (N, Ck, H, W)
  const void* value;     // (N, C, H, W)
  const void* grad_out;  // (N, C, H, W), backward only
  const void* source;    // the aggregated tensor X: V, dO, K or Q
  const void* lse;       // (N, H, W) opmath
  const void* delta;     // (N, H, W) opmath, GradQuery/GradKey only
  void* out;             // (N, out_channels, H, W)
};

// out[c, a] (+)= Σ_b W(a, b) X[c, b] over one line, W as the Mode says. Grid: (lines, a-tiles,
// channel tiles of out).
template <typename scalar_t, typename acc_t, Mode mode>
__global__ void __launch_bounds__(kThreads)
    line_pass_kernel(PassTensors t, int64_t key_channels, int64_t channels, int64_t out_channels,
                     int64_t plane, Lines lines, bool accumulate) {
  __shared__ acc_t sa[kChunk][kTileA];
  __shared__ acc_t sb[kChunk][kTileB];
  __shared__ acc_t weight[kTileA][kTileB + 1];
  __shared__ acc_t sx[kTileC][kTileB + 1];
  const auto* query = static_cast<const scalar_t*>(t.query);
  const auto* key = static_cast<const scalar_t*>(t.key);
  const auto* value = static_cast<const scalar_t*>(t.value);
  const auto* grad_out = static_cast<const scalar_t*>(t.grad_out);
  const auto* source = static_cast<const scalar_t*>(t.source);
  const auto* lse = static_cast<const acc_t*>(t.lse);
  const auto* delta = static_cast<const acc_t*>(t.delta);
  auto* out = static_cast<scalar_t*>(t.out);

  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int a0 = blockIdx.y * kTileA;
  const int64_t c0 = static_cast<int64_t>(blockIdx.z) * kTileC;
  const LineIndex at = line_index(lines, plane);
  constexpr bool by_query = a_is_query(mode);
  acc_t acc[4][2] = {};

  for (int b0 = 0; b0 < lines.length; b0 += kTileB) {
    // 1. the weight tile W(a, b), from scratch
    acc_t e[2][2] = {{0, 0}, {0, 0}};
    tile_dot(e, by_query ? query : key, by_query ? key : query, key_channels, at, lines.length,
             a0, b0, sa, sb);
    acc_t dp[2][2] = {{0, 0}, {0, 0}};
    if constexpr (needs_grad_energy(mode)) {
      tile_dot(dp, by_query ? grad_out : value, by_query ? value : grad_out, channels, at,
               lines.length, a0, b0, sa, sb);
    }
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        const int a = a0 + ty + 16 * i, b = b0 + tx + 16 * j;
        const bool valid = a < lines.length && b < lines.length && !(lines.skip_self && a == b);
        acc_t w = 0;
        if (valid) {
          const int64_t q = at(1, 0, by_query ? a : b);
          w = device_exp(e[i][j] - lse[q]);
          if constexpr (needs_grad_energy(mode)) w *= dp[i][j] - delta[q];
        }
        weight[ty + 16 * i][tx + 16 * j] = w;
      }
    }
    // 2. the X tile: kTileC channels × kTileB positions
    for (int idx = tid; idx < kTileC * kTileB; idx += kThreads) {
      const int c = idx / kTileB, b = idx % kTileB;
      sx[c][b] = c0 + c < out_channels && b0 + b < lines.length
                     ? static_cast<acc_t>(source[at(out_channels, c0 + c, b0 + b)])
                     : acc_t(0);
    }
    __syncthreads();
    // 3. acc[c][a] += Σ_b X[c, b] W(a, b)
#pragma unroll 8
    for (int b = 0; b < kTileB; ++b) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 2; ++j) acc[i][j] += sx[ty + 16 * i][b] * weight[tx + 16 * j][b];
      }
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 2; ++j) {
      const int64_t c = c0 + ty + 16 * i;
      const int a = a0 + tx + 16 * j;
      if (c < out_channels && a < lines.length) {
        const int64_t offset = at(out_channels, c, a);
        const acc_t previous = accumulate ? static_cast<acc_t>(out[offset]) : acc_t(0);
        out[offset] = static_cast<scalar_t>(previous + acc[i][j]);
      }
    }
  }
}

}  // namespace wsss_cca
