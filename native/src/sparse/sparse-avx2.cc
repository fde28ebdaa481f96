// AVX2 SpMM kernels (sparse-tile.h): 8 pixels per ymm, 16 registers. Unstructured and 1x4
// blocks: one output, 4 vectors (32 pixels) x 2 accumulator sets; 4x1 blocks: 4 outputs x 2
// vectors; 8x1 blocks: 8 outputs x 1 vector (8 accumulators, each X load feeds 8 FMAs).
#include "common/simd.h"

#include "common/dispatch.h"
#include "common/f32-vec.h"
#include "sparse/sparse-tile.h"

namespace kiln {
namespace {

// tail_mask(n): the first min(n, 8) lanes.
struct Avx2 : F32Avx2 {
  static Mask tail_mask(size_t n) { return first_lanes(n); }
};

}  // namespace

void f32_spmm_32x1_avx2(const F32SpmmArgs& a) { spmm_detail::spmm<Avx2, 1, 1, 4, 2>(a); }
void f32_spmm_32x1_b1x4_avx2(const F32SpmmArgs& a) { spmm_detail::spmm<Avx2, 1, 4, 4, 2>(a); }
void f32_spmm_16x4_avx2(const F32SpmmArgs& a) { spmm_detail::spmm<Avx2, 4, 1, 2, 1>(a); }
void f32_spmm_8x8_avx2(const F32SpmmArgs& a) { spmm_detail::spmm<Avx2, 8, 1, 1, 1>(a); }

void fill_f32_spmm_avx2(DispatchTable* t) {
  F32SpmmKernels& k = t->f32_spmm;
  k.kernel[static_cast<int>(SparsePattern::kUnstructured)] = f32_spmm_32x1_avx2;
  k.kernel[static_cast<int>(SparsePattern::kBlock1x4)] = f32_spmm_32x1_b1x4_avx2;
  k.kernel[static_cast<int>(SparsePattern::kBlock4x1)] = f32_spmm_16x4_avx2;
  k.kernel[static_cast<int>(SparsePattern::kBlock8x1)] = f32_spmm_8x8_avx2;
  k.pixel_tile = 32;
}

}  // namespace kiln
