// AVX-512 N:M SpMM kernels (sparse-nm-tile.h): one output row x 4 zmm (64 pixels) x 2
// accumulator sets, the shape measured best for the unstructured AVX-512 SpMM kernel (one
// broadcast weight feeds 4 FMAs).
#include "common/simd.h"

#include "common/dispatch.h"
#include "common/f32-vec.h"
#include "sparse/sparse-nm-tile.h"

namespace kiln {
namespace {

struct Avx512 : F32Avx512 {
  static Mask tail_mask(size_t n) { return first_lanes(n); }
};

}  // namespace

void fill_f32_nm_spmm_avx512(DispatchTable* t) { nm_detail::fill<Avx512, 4>(&t->f32_nm_spmm); }

}  // namespace kiln
