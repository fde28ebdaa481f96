// AVX2+FMA fp32 micro-kernel: 6 rows x 16 columns (one B panel), 12 ymm accumulators.
// 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers; 12 independent
// chains cover the FMA latency (4) x 2 pipes.
#include "common/simd.h"

#include "common/dispatch.h"
#include "f32-gemm/f32-gemm-ukernel.h"

namespace kiln {
namespace {

constexpr int kRows = static_cast<int>(kF32GemmMr);
constexpr int kVecs = 2;  // 8-float vectors per row of the tile

// Lane mask (all bits set = lane on) of the valid lanes of the last vector of an `nr`-wide tile.
inline __m256i tail_mask(size_t nr) {
  const int rem = static_cast<int>(nr % 8);
  const int valid = rem == 0 ? 8 : rem;
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lanes);
}

// R rows, V vectors; MASKED: the last vector is partial (masked loads and stores). B is read
// under the mask only when it is not padded (read in place).
template <int R, int V, bool MASKED>
void tile(const F32GemmTile& t) {
  __m256 acc[R][V];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();

  const __m256i tail = tail_mask(t.nr);
  const bool mask_b = MASKED && !t.b_padded;
  const float* a = t.a;
  const float* b = t.b;
  const size_t ks = t.b_k_stride;
  if (mask_b) {
    for (size_t p = 0; p < t.k; ++p) {
      __m256 bv[V];
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        bv[v] = v == V - 1 ? _mm256_maskload_ps(b + 8 * v, tail) : _mm256_loadu_ps(b + 8 * v);
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + r);
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
      }
      a += kF32GemmMr;
      b += ks;
    }
  } else {
    for (size_t p = 0; p < t.k; ++p) {
      __m256 bv[V];
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + r);
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
      }
      a += kF32GemmMr;
      b += ks;
    }
  }

  // Locals: stores through c could alias `t` as far as the compiler knows.
  const __m256 alpha = _mm256_set1_ps(t.alpha);
  const __m256 beta = _mm256_set1_ps(t.beta);
  const __m256 zero = _mm256_setzero_ps();
  const bool load_c = t.load_c, relu = t.relu;
  // alpha = 1 and beta = 1 (every K block after the first) are the common cases: skip the
  // multiplies, which compete with FMAs for the same pipes when K is small.
  const bool unit_alpha = t.alpha == 1.0f, unit_beta = t.beta == 1.0f;
  const float* const row_bias_p = t.row_bias;
  const float* const col_bias_p = t.col_bias;
  float* const c0 = t.c;
  const size_t ldc = t.ldc;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    float* c = c0 + r * ldc;
    const __m256 row_bias = row_bias_p ? _mm256_broadcast_ss(row_bias_p + r) : zero;
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      const bool partial = MASKED && v == V - 1;
      __m256 x = unit_alpha ? acc[r][v] : _mm256_mul_ps(alpha, acc[r][v]);
      if (load_c) {
        const __m256 old = partial ? _mm256_maskload_ps(c + 8 * v, tail) : _mm256_loadu_ps(c + 8 * v);
        x = unit_beta ? _mm256_add_ps(x, old) : _mm256_fmadd_ps(beta, old, x);
      }
      if (row_bias_p) x = _mm256_add_ps(x, row_bias);
      if (col_bias_p) {
        const float* cb = col_bias_p + 8 * v;
        x = _mm256_add_ps(x, partial ? _mm256_maskload_ps(cb, tail) : _mm256_loadu_ps(cb));
      }
      // max(0, x) returns x when x is NaN: a NaN product stays visible instead of becoming 0.
      if (relu) x = _mm256_max_ps(zero, x);
      if (partial) {
        _mm256_maskstore_ps(c + 8 * v, tail, x);
      } else {
        _mm256_storeu_ps(c + 8 * v, x);
      }
    }
  }
}

using TileFn = void (*)(const F32GemmTile&);

// [rows - 1][vectors - 1][partial last vector]
const TileFn kTiles[kRows][kVecs][2] = {
    {{tile<1, 1, false>, tile<1, 1, true>}, {tile<1, 2, false>, tile<1, 2, true>}},
    {{tile<2, 1, false>, tile<2, 1, true>}, {tile<2, 2, false>, tile<2, 2, true>}},
    {{tile<3, 1, false>, tile<3, 1, true>}, {tile<3, 2, false>, tile<3, 2, true>}},
    {{tile<4, 1, false>, tile<4, 1, true>}, {tile<4, 2, false>, tile<4, 2, true>}},
    {{tile<5, 1, false>, tile<5, 1, true>}, {tile<5, 2, false>, tile<5, 2, true>}},
    {{tile<6, 1, false>, tile<6, 1, true>}, {tile<6, 2, false>, tile<6, 2, true>}},
};

}  // namespace

void f32_gemm_6x16_avx2(const F32GemmTile& t) {
  kTiles[t.mr - 1][(t.nr + 7) / 8 - 1][t.nr % 8 != 0 ? 1 : 0](t);
}

// 12 independent FMA chains (latency 4 x 2 pipes needs 8). Each converges to 1: no denormals.
double f32_gemm_peak_avx2(size_t iterations) {
  constexpr int kChains = 12;
  __m256 acc[kChains];
#pragma GCC unroll 12
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  __m256 mul = _mm256_set1_ps(0.999f);
  __m256 add = _mm256_set1_ps(0.001f);
  __asm__("" : "+x"(mul), "+x"(add));
  for (size_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
  }
  __m256 sum = acc[0];
#pragma GCC unroll 12
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  volatile float sink = lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
  (void)sink;
  return static_cast<double>(iterations) * kChains * 8 * 2;
}

void fill_f32_gemm_avx2(DispatchTable* table) {
  table->f32_gemm.mr = kF32GemmMr;
  table->f32_gemm.nr = 8 * kVecs;
  table->f32_gemm.ukernel = f32_gemm_6x16_avx2;
  table->f32_gemm.peak_loop = f32_gemm_peak_avx2;
}

}  // namespace kiln
