// The fp32 micro-kernel tile and peak loop, shared by the per-ISA GEMM files: each includes this
// after common/simd.h and instantiates it with its vector type (anonymous namespace: one copy per
// translation unit, compiled with that file's flags). `V` supplies:
//   V::kLanes, V::Vec, V::Mask
//   V::tail_mask(nr)          the valid lanes of the last vector of an `nr`-wide tile
//   V::zero(), V::set1(x), V::broadcast(p)       (p: one float)
//   V::loadu(p), V::load_tail(p, mask)           (masked: zero outside, never touched)
//   V::storeu(p, v), V::store_tail(p, mask, v)
//   V::add, V::mul, V::max, V::fmadd(a, b, c) = a * b + c
//   V::hide(a, b)             an empty asm, so the compiler cannot reason about the peak's constants
//   V::sum_lanes(v)           the lanes' sum, as a float
// The loops over rows and vectors are fully unrolled so the accumulators live in registers.
#pragma once
#include <cstddef>

#include "f32-gemm/f32-gemm-ukernel.h"

namespace kiln {
namespace {

// acc += the tile's product over K: B(p, j) for the tile's vector v starts at
// b + (v * L / 16) * panel stride + (v * L) % 16 (several vectors of one 16-column panel on AVX2,
// one panel per vector on AVX-512). MASK_B: the last B vector is loaded under the tail mask.
// PACKED_B: B comes in 16-column panels (k stride 16), else it is a row-major B read in place.
template <class V, int R, int NV, bool MASK_B, bool PACKED_B>
__attribute__((always_inline)) inline void f32_gemm_k_steps(const F32GemmTile& t, typename V::Mask tail,
                                                            typename V::Vec (&acc)[R][NV]) {
  constexpr size_t L = V::kLanes;
  constexpr int kMr = static_cast<int>(kF32GemmMr);
  const float* a = t.a;
  const float* b = t.b;
  const size_t ks = t.b_k_stride;
  const size_t ps = t.b_panel_stride;
  const size_t aps = t.a_panel_stride;
  // A packed B panel is read once per K block from memory: fetch it 24 steps (1.5 KiB) ahead. A
  // row-major B read in place is not: 24 of its rows ahead can be pages away, past K. Its kc rows
  // are kc strided streams, too many for the hardware prefetcher to follow, so each step fetches
  // the same row of the next column tile (the driver's next tile, NV * L columns on), one line per
  // 16 floats: a tile's worth of steps ahead of its use. Into L2 only (prefetcht1): those
  // fetches come from L3 or memory at a batch's first pass over B, and the L1's few fill buffers
  // held them up. ResNet-50's 1x1 shapes at batch 16, one thread, AVX-512, Xeon VM: 56x56 ones
  // 8-12% faster (256->64: 104-109 -> 115-122 GFLOP/s), all eleven 173-175 -> 166-170 ms; batch 1
  // even. The packed panels' prefetch stays into L1: into L2 it made 7x7 layers 3% slower.
  constexpr int kNextLines = static_cast<int>((NV * L + 15) / 16);
  // Four steps per iteration: the loop's own scalar uops (pointer steps, compare, branch), which
  // compete with the FMAs for ports, once per four steps.
#pragma GCC unroll 4
  for (size_t p = 0; p < t.k; ++p) {
    // A streams once through a product with few columns (a convolution at batch 1 on a small
    // plane): fetch it ahead, since its panels of one K block lie far apart.
    __builtin_prefetch(a + 16 * kF32GemmMr);
    if (R > kMr) __builtin_prefetch(a + aps + 16 * kF32GemmMr);
    typename V::Vec bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const float* bp = b + (v * L / kF32GemmPanelN) * ps + (v * L) % kF32GemmPanelN;
      bv[v] = (MASK_B && v == NV - 1) ? V::load_tail(bp, tail) : V::loadu(bp);
      if (L == kF32GemmPanelN && PACKED_B) __builtin_prefetch(bp + 24 * kF32GemmPanelN);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const typename V::Vec av = V::broadcast(a + (r / kMr) * aps + r % kMr);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fmadd(av, bv[v], acc[r][v]);
    }
    if (!PACKED_B) {
#pragma GCC unroll 4
      for (int l = 0; l < kNextLines; ++l) __builtin_prefetch(b + NV * L + 16 * l, 0, 2);
    }
    a += kF32GemmMr;
    b += ks;
  }
}

// One K loop per kind of B, chosen once per tile: tested inside the loop, the B layout cost two
// compares and branches per step. With the unrolling (AVX-512, one thread, this project's Xeon
// VM, old / new binaries alternated twice): GEMM 512^3 80-83% -> 82-85% of the FMA peak;
// ResNet-50's eleven 1x1 convolution shapes at batch 16, 197-203 -> 186-188 ms in all (those on
// 56x56, whose B is read in place, 8-15% faster).
template <class V, int R, int NV, bool MASK_B>
__attribute__((always_inline)) inline void f32_gemm_k_loop(const F32GemmTile& t, typename V::Mask tail,
                                                           typename V::Vec (&acc)[R][NV]) {
  if (t.b_k_stride == kF32GemmPanelN) {
    f32_gemm_k_steps<V, R, NV, MASK_B, true>(t, tail, acc);
  } else {
    f32_gemm_k_steps<V, R, NV, MASK_B, false>(t, tail, acc);
  }
}

// R rows x NV vectors of one tile. MASKED_C: the last vector of C, and of the column bias, is
// loaded and stored under the tail mask (else whole). B's last vector is loaded under it when
// MASK_B and, with B_PADDED_AT_RUN_TIME, only for a tile whose B is not padded (one function,
// both K loops: the AVX2 choice); without it MASK_B alone decides (the AVX-512 one, at dispatch).
template <class V, int R, int NV, bool MASK_B, bool B_PADDED_AT_RUN_TIME, bool MASKED_C>
void f32_gemm_tile(const F32GemmTile& t) {
  constexpr size_t L = V::kLanes;
  typename V::Vec acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();

  const typename V::Mask tail = V::tail_mask(t.nr);
  if (MASK_B && (!B_PADDED_AT_RUN_TIME || !t.b_padded)) {
    f32_gemm_k_loop<V, R, NV, MASK_B>(t, tail, acc);
  } else {
    f32_gemm_k_loop<V, R, NV, false>(t, tail, acc);
  }

  // Locals: stores through c could alias `t` as far as the compiler knows.
  const typename V::Vec alpha = V::set1(t.alpha);
  const typename V::Vec beta = V::set1(t.beta);
  const typename V::Vec zero = V::zero();
  const bool load_c = t.load_c, relu = t.relu, clamp = t.clamp;
  const typename V::Vec clamp_lo = V::set1(t.clamp_lo), clamp_hi = V::set1(t.clamp_hi);
  // alpha = 1 and beta = 1 (every K block after the first) are the common cases: skip the
  // multiplies, which compete with FMAs for the same pipes when K is small.
  const bool unit_alpha = t.alpha == 1.0f, unit_beta = t.beta == 1.0f;
  const float* const row_bias_p = t.row_bias;
  const float* const col_bias_p = t.col_bias;
  float* const c0 = t.c;
  const size_t ldc = t.ldc;
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    float* c = c0 + r * ldc;
    const typename V::Vec row_bias = row_bias_p ? V::broadcast(row_bias_p + r) : zero;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const bool partial = MASKED_C && v == NV - 1;
      typename V::Vec x = unit_alpha ? acc[r][v] : V::mul(alpha, acc[r][v]);
      if (load_c) {
        const typename V::Vec old = partial ? V::load_tail(c + L * v, tail) : V::loadu(c + L * v);
        x = unit_beta ? V::add(x, old) : V::fmadd(beta, old, x);
      }
      if (row_bias_p) x = V::add(x, row_bias);
      if (col_bias_p) {
        const float* cb = col_bias_p + L * v;
        x = V::add(x, partial ? V::load_tail(cb, tail) : V::loadu(cb));
      }
      // max(0, x) returns x when x is NaN: a NaN product stays visible instead of becoming 0.
      if (relu) x = V::max(zero, x);
      if (clamp) x = V::min(clamp_hi, V::max(clamp_lo, x));
      if (partial) {
        V::store_tail(c + L * v, tail, x);
      } else {
        V::storeu(c + L * v, x);
      }
    }
  }
}

// CHAINS independent FMA chains. Each converges to a fixed point (x = 0.999x + 0.001 -> 1), so no
// overflow or denormals. Returns the floating-point operations done.
template <class V, int CHAINS>
double f32_gemm_peak(size_t iterations) {
  typename V::Vec acc[CHAINS];
#pragma GCC unroll 24
  for (int i = 0; i < CHAINS; ++i) acc[i] = V::set1(static_cast<float>(i));
  typename V::Vec mul = V::set1(0.999f);
  typename V::Vec add = V::set1(0.001f);
  V::hide(mul, add);
  for (size_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < CHAINS; ++i) acc[i] = V::fmadd(acc[i], mul, add);
  }
  typename V::Vec sum = acc[0];
#pragma GCC unroll 24
  for (int i = 1; i < CHAINS; ++i) sum = V::add(sum, acc[i]);
  volatile float sink = V::sum_lanes(sum);
  (void)sink;
  return static_cast<double>(iterations) * CHAINS * V::kLanes * 2;
}

}  // namespace
}  // namespace kiln
