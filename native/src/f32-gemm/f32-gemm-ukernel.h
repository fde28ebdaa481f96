// The contract between the fp32 GEMM driver (f32-gemm.cc) and the per-ISA micro-kernels
// (f32-gemm-reference.cc, f32-gemm-avx2.cc, f32-gemm-avx512.cc). Internal: the packing layout it
// relies on (kF32GemmMr, kF32GemmPanelN) is public in kiln/f32-gemm.h, the tile contract is not.
#pragma once
#include <cstddef>

#include "kiln/f32-gemm.h"

namespace kiln {

// One output tile of at most MR x NR elements (the table's mr x nr; MR a multiple of kF32GemmMr).
struct F32GemmTile {
  // Packed A: rows in panels of kF32GemmMr, row i at a[(i / kF32GemmMr) * a_panel_stride + p * kF32GemmMr + i % kF32GemmMr].
  const float* a = nullptr;
  size_t a_panel_stride = 0;   // floats between consecutive A panels (only read when mr > kF32GemmMr)
  const float* b = nullptr;    // B(p, j) at b[p * b_k_stride + (j / 16) * b_panel_stride + j % 16]
  size_t b_k_stride = 0;       // floats between consecutive k of B
  size_t b_panel_stride = 0;   // floats between 16-column panels of B
  bool b_padded = false;       // B columns past nr up to the panel end may be read (they are zeros)
  float* c = nullptr;
  size_t ldc = 0;
  size_t mr = 0, nr = 0, k = 0;  // 1 <= mr <= MR, 1 <= nr <= NR, k >= 1
  float alpha = 1.0f;
  bool load_c = false;           // false: C is write-only (its old content, NaN included, is ignored)
  float beta = 0.0f;             // C = alpha * sum + beta * C when load_c
  // Epilogue, applied after the sum (only on the last K block): bias then ReLU.
  const float* row_bias = nullptr;  // mr values, or null
  const float* col_bias = nullptr;  // nr values, or null
  bool relu = false;
  bool clamp = false;  // then min(clamp_hi, max(clamp_lo, x)): NaN stays NaN
  float clamp_lo = 0.0f, clamp_hi = 0.0f;
};

// Bound first, value second, as the vector kernels' max/min: a NaN x comes back as x.
inline float clamp_value(float x, float lo, float hi) {
  x = lo > x ? lo : x;
  return hi < x ? hi : x;
}

using F32GemmUkernelFn = void (*)(const F32GemmTile& tile);
// y[0, N) = x[0, K) * B + epilogue for one row against a PackedB (panels of kF32GemmPanelN columns,
// `b_panel_stride` = K * kF32GemmPanelN floats apart). The sum over K runs in blocks of
// `kc`, each summed from zero and then added to the previous blocks, as the tiled path does.
using F32GemvPackedFn = void (*)(const float* x, size_t k, size_t kc, const float* b, size_t n, float* y,
                                 const float* col_bias, bool relu);
// Runs `iterations` rounds of a register-only FMA loop; returns the floating-point operations done.
using F32PeakLoopFn = double (*)(size_t iterations);

struct F32GemmKernels {
  size_t mr = 0;  // rows per tile (a multiple of kF32GemmMr: the tile reads mr / kF32GemmMr A panels)
  size_t nr = 0;  // columns per tile (a multiple of kF32GemmPanelN)
  F32GemmUkernelFn ukernel = nullptr;
  F32PeakLoopFn peak_loop = nullptr;
  // One-row product against a PackedB (a Linear layer at batch 1), or null: the tiled path.
  F32GemvPackedFn gemv_packed = nullptr;
};

// What a caller knows of its B operand: nothing, or that it is a convolution's column matrix or
// input planes (warm from im2col or the step before, or cold from memory: read in place alike up
// to 256 rows since the in-place tiles prefetch into L2). It decides whether reading B in place or
// packing it is faster (f32-gemm.cc, read_b_in_place).
enum class BHint { kUnknown, kConvolution };

// sgemm_packed_a on the kernels of one table, which a caller that read dispatch() once for a
// whole operation passes down (kiln/f32-gemm.h's overload reads the active table).
void sgemm_packed_a(const F32GemmKernels& kern, const PackedA& a, size_t n, bool trans_b, const float* b,
                    size_t ldb, float* c, size_t ldc, const GemmEpilogue& epilogue, size_t max_threads,
                    BHint b_hint = BHint::kUnknown);

// sgemm_packed_b on the kernels of one table (see sgemm_packed_a above).
void sgemm_packed_b(const F32GemmKernels& kern, size_t m, bool trans_a, const float* a, size_t lda, const PackedB& b,
                    float* c, size_t ldc, const GemmEpilogue& epilogue, size_t max_threads);

// Columns [n0, n1) of sgemm_packed_b's C, on the calling thread (the caller splits the columns
// over its own threads, and works on each part's output right after it). n0 is a multiple of
// kF32GemmPanelN; `c` is the whole C. Each element gets the bits sgemm_packed_b gives it.
void sgemm_packed_b_columns(const F32GemmKernels& kern, size_t m, bool trans_a, const float* a, size_t lda,
                            const PackedB& b, size_t n0, size_t n1, float* c, size_t ldc, const GemmEpilogue& epilogue);

// The micro-kernels, named by tile and ISA (so a profile says which one ran).
void f32_gemm_6x16_scalar(const F32GemmTile& tile);
void f32_gemm_6x16_avx2(const F32GemmTile& tile);
void f32_gemm_12x32_avx512(const F32GemmTile& tile);
double f32_gemm_peak_scalar(size_t iterations);
double f32_gemm_peak_avx2(size_t iterations);
double f32_gemm_peak_avx512(size_t iterations);
void f32_gemv_packed_avx512(const float* x, size_t k, size_t kc, const float* b, size_t n, float* y,
                            const float* col_bias, bool relu);

}  // namespace kiln
