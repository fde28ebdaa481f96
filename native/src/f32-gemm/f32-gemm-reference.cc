// Portable fp32 GEMM pieces: the scalar micro-kernel (fallback on any CPU, same 6 x 16 tile and
// packed layout as the SIMD kernels), its peak loop, and the float64 naive GEMM used as the oracle.
#include "common/dispatch.h"
#include "f32-gemm/f32-gemm-ukernel.h"

namespace kiln {
namespace {

constexpr size_t kNr = kF32GemmPanelN;

// Sums over depth into acc[R][kNr]. WIDTH: columns read per k (kNr when B is zero-padded).
template <int R>
void accumulate(const F32GemmTile& t, size_t width, float (*acc)[kNr]) {
  const float* a = t.a;
  const float* b = t.b;
  for (size_t p = 0; p < t.k; ++p) {
    for (int r = 0; r < R; ++r) {
      const float ar = a[r];
      if (width == kNr) {
        for (size_t j = 0; j < kNr; ++j) acc[r][j] += ar * b[j];
      } else {
        for (size_t j = 0; j < width; ++j) acc[r][j] += ar * b[j];
      }
    }
    a += kF32GemmMr;
    b += t.b_k_stride;
  }
}

template <int R>
void tile(const F32GemmTile& t) {
  float acc[R][kNr] = {};
  accumulate<R>(t, t.b_padded ? kNr : t.nr, acc);
  for (int r = 0; r < R; ++r) {
    float* c = t.c + r * t.ldc;
    for (size_t j = 0; j < t.nr; ++j) {
      float x = t.alpha * acc[r][j];
      if (t.load_c) x += t.beta * c[j];
      if (t.row_bias) x += t.row_bias[r];
      if (t.col_bias) x += t.col_bias[j];
      if (t.relu && x < 0.0f) x = 0.0f;  // NaN stays NaN
      if (t.clamp) x = clamp_value(x, t.clamp_lo, t.clamp_hi);
      c[j] = x;
    }
  }
}

using TileFn = void (*)(const F32GemmTile&);
const TileFn kTiles[kF32GemmMr] = {tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

}  // namespace

void f32_gemm_6x16_scalar(const F32GemmTile& t) { kTiles[t.mr - 1](t); }

// Multiply-add chains in plain C++: the compiler turns them into what the baseline ISA offers
// (SSE mul + add), which is also what the scalar micro-kernel compiles to.
double f32_gemm_peak_scalar(size_t iterations) {
  constexpr int kChains = 32;
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = static_cast<float>(i);
  float mul = 0.999f, add = 0.001f;
  __asm__("" : "+x"(mul), "+x"(add));
  for (size_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * mul + add;
  }
  float sum = 0.0f;
  for (int i = 0; i < kChains; ++i) sum += acc[i];
  volatile float sink = sum;
  (void)sink;
  return static_cast<double>(iterations) * kChains * 2;
}

void fill_f32_gemm_scalar(DispatchTable* table) {
  table->f32_gemm.mr = kF32GemmMr;
  table->f32_gemm.nr = kNr;
  table->f32_gemm.ukernel = f32_gemm_6x16_scalar;
  table->f32_gemm.peak_loop = f32_gemm_peak_scalar;
}

void sgemm_naive(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha,
                 const float* a, size_t lda, const float* b, size_t ldb, float beta, float* c,
                 size_t ldc, const GemmEpilogue& epilogue) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (size_t p = 0; p < k; ++p) {
        const double av = trans_a ? a[p * lda + i] : a[i * lda + p];
        const double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        sum += av * bv;
      }
      double v = static_cast<double>(alpha) * sum;
      const double c_scale = static_cast<double>(beta) + (epilogue.accumulate ? 1.0 : 0.0);
      if (c_scale != 0.0) v += c_scale * c[i * ldc + j];
      if (epilogue.bias_mode == BiasMode::kPerRow) v += epilogue.bias[i];
      if (epilogue.bias_mode == BiasMode::kPerColumn) v += epilogue.bias[j];
      if (epilogue.relu && v < 0.0) v = 0.0;
      if (epilogue.clamp) {  // NaN stays NaN
        v = epilogue.clamp_lo > v ? epilogue.clamp_lo : v;
        v = epilogue.clamp_hi < v ? epilogue.clamp_hi : v;
      }
      c[i * ldc + j] = static_cast<float>(v);
    }
  }
}

}  // namespace kiln
