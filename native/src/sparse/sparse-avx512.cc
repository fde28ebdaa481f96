// AVX-512 SpMM kernels (sparse-tile.h): 16 pixels per zmm. Unstructured and 1x4 blocks: one
// output x 4 vectors (64 pixels) x 2 accumulator sets (8 FMA chains; measured faster than 32
// pixels x 4 sets, whose tile of X stays in L1 for K = 288 but pays the index, address and
// broadcast for every 2 FMAs instead of 4); 4x1 blocks: 4 outputs x 4 vectors (16 accumulators,
// each X load feeds 4 FMAs); 8x1 blocks: 8 outputs x 3 vectors (24 accumulators, each X load
// feeds 8 FMAs). Both block kernels were measured faster than on 32 pixels (alternating runs).
#include "common/simd.h"

#include "common/dispatch.h"
#include "common/f32-vec.h"
#include "sparse/sparse-tile.h"

namespace kiln {
namespace {

// tail_mask(n): the first min(n, 16) lanes.
struct Avx512 : F32Avx512 {
  static Mask tail_mask(size_t n) { return first_lanes(n); }
};

}  // namespace

void f32_spmm_64x1_avx512(const F32SpmmArgs& a) { spmm_detail::spmm<Avx512, 1, 1, 4, 2>(a); }
void f32_spmm_64x1_b1x4_avx512(const F32SpmmArgs& a) { spmm_detail::spmm<Avx512, 1, 4, 4, 2>(a); }
void f32_spmm_64x4_avx512(const F32SpmmArgs& a) { spmm_detail::spmm<Avx512, 4, 1, 4, 1>(a); }
void f32_spmm_48x8_avx512(const F32SpmmArgs& a) { spmm_detail::spmm<Avx512, 8, 1, 3, 1>(a); }

void fill_f32_spmm_avx512(DispatchTable* t) {
  F32SpmmKernels& k = t->f32_spmm;
  k.kernel[static_cast<int>(SparsePattern::kUnstructured)] = f32_spmm_64x1_avx512;
  k.kernel[static_cast<int>(SparsePattern::kBlock1x4)] = f32_spmm_64x1_b1x4_avx512;
  k.kernel[static_cast<int>(SparsePattern::kBlock4x1)] = f32_spmm_64x4_avx512;
  k.kernel[static_cast<int>(SparsePattern::kBlock8x1)] = f32_spmm_48x8_avx512;
  k.pixel_tile = 192;  // a multiple of every kernel's tile (64 and 48)
}

}  // namespace kiln
