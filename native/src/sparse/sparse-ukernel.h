// The contract between the SpMM driver (sparse.cc) and the per-ISA kernels (sparse-reference.cc,
// sparse-avx2.cc, sparse-avx512.cc, the SIMD ones from sparse-tile.h). Internal.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/sparse.h"

namespace kiln {

// Block-rows [rb_begin, rb_end) of a packed matrix against columns [0, n) of X.
struct F32SpmmArgs {
  const uint32_t* row_ptr = nullptr;  // PackedSparseF32::row_ptr()
  const uint32_t* col = nullptr;      // first k of each block; col + bc <= K
  const float* values = nullptr;      // br * bc per block
  size_t k = 0;                       // depth of W (rows of X)
  const uint32_t* used_k = nullptr;   // the rows of X any block reads, increasing
  size_t used_k_count = 0;
  size_t m = 0;                       // valid outputs: rows of the last block-row past m are not written
  size_t rb_begin = 0, rb_end = 0;
  const float* x = nullptr;           // X(k, j) at x[k * ldx + j]
  size_t ldx = 0;
  size_t n = 0;                       // >= 1
  float* y = nullptr;                 // Y(i, j) at y[i * ldy + j], write-only
  size_t ldy = 0;
  const float* bias = nullptr;        // m values, or null
  bool relu = false;
};

using F32SpmmFn = void (*)(const F32SpmmArgs& args);

struct F32SpmmKernels {
  // One kernel per SparsePattern (indexed by its value); never null.
  F32SpmmFn kernel[kSparsePatternCount] = {};
  size_t pixel_tile = 1;  // columns of X one kernel call sweeps per register tile (N split unit)
};

// spmm_f32 on the kernels of one table (tests walk every ISA's table).
void spmm_f32(const F32SpmmKernels& kern, const PackedSparseF32& w, size_t n, const float* x, size_t ldx,
              float* y, size_t ldy, const float* bias, bool relu, size_t max_threads);

// Named pixels x outputs per register tile, pattern and ISA.
void f32_spmm_1x1_scalar(const F32SpmmArgs& a);
void f32_spmm_1x1_b1x4_scalar(const F32SpmmArgs& a);
void f32_spmm_1x4_scalar(const F32SpmmArgs& a);
void f32_spmm_1x8_scalar(const F32SpmmArgs& a);
void f32_spmm_32x1_avx2(const F32SpmmArgs& a);
void f32_spmm_32x1_b1x4_avx2(const F32SpmmArgs& a);
void f32_spmm_16x4_avx2(const F32SpmmArgs& a);
void f32_spmm_8x8_avx2(const F32SpmmArgs& a);
void f32_spmm_64x1_avx512(const F32SpmmArgs& a);
void f32_spmm_64x1_b1x4_avx512(const F32SpmmArgs& a);
void f32_spmm_64x4_avx512(const F32SpmmArgs& a);
void f32_spmm_48x8_avx512(const F32SpmmArgs& a);

}  // namespace kiln
