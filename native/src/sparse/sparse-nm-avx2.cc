// AVX2 N:M SpMM kernels (sparse-nm-tile.h): one output row x 4 ymm (32 pixels) x 2 accumulator
// sets, as the unstructured AVX2 SpMM kernel (8 FMA chains in 16 registers).
#include "common/simd.h"

#include "common/dispatch.h"
#include "common/f32-vec.h"
#include "sparse/sparse-nm-tile.h"

namespace kiln {
namespace {

struct Avx2 : F32Avx2 {
  static Mask tail_mask(size_t n) { return first_lanes(n); }
};

}  // namespace

void fill_f32_nm_spmm_avx2(DispatchTable* t) { nm_detail::fill<Avx2, 4>(&t->f32_nm_spmm); }

}  // namespace kiln
