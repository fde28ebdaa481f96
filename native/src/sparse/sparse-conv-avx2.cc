// AVX2 direct sparse convolution kernels (sparse-conv-tile.h): 8 positions per ymm, 16 registers.
// One channel: up to 12 accumulators; 4x1 blocks: 4 channels x up to 3 vectors (12 accumulators
// and 3 loads); 8x1 blocks: 8 channels x 1 vector (8 accumulators, each load feeds 8 FMAs).
#include "common/simd.h"

#include "common/dispatch.h"
#include "common/f32-vec.h"
#include "sparse/sparse-conv-tile.h"

namespace kiln {
namespace {

struct Avx2 : F32Avx2 {
  static Mask tail_mask(size_t n) { return first_lanes(n); }
  // In-lane shuffles give pairs 0 1 4 5 | 2 3 6 7; the 64-bit permute puts them in order.
  static Vec max_pairs(Vec lo, Vec hi) {
    const __m256 m = _mm256_max_ps(_mm256_shuffle_ps(lo, hi, 0x88), _mm256_shuffle_ps(lo, hi, 0xDD));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), 0xD8));
  }
};

}  // namespace

void f32_sparse_conv_1_avx2(const F32SparseConvArgs& a) { sparse_conv_detail::conv<Avx2, 1, 12>(a); }
void f32_sparse_conv_4_avx2(const F32SparseConvArgs& a) { sparse_conv_detail::conv<Avx2, 4, 3>(a); }
void f32_sparse_conv_8_avx2(const F32SparseConvArgs& a) { sparse_conv_detail::conv<Avx2, 8, 1>(a); }

void f32_sparse_conv_max_pool_avx2(const F32SparseConvPoolArgs& a) { sparse_conv_detail::max_pool<Avx2>(a); }

void fill_f32_sparse_conv_avx2(DispatchTable* t) {
  F32SparseConvKernels& k = t->f32_sparse_conv;
  k.kernel[0] = f32_sparse_conv_1_avx2;
  k.kernel[1] = f32_sparse_conv_4_avx2;
  k.kernel[2] = f32_sparse_conv_8_avx2;
  k.max_pool = f32_sparse_conv_max_pool_avx2;
}

}  // namespace kiln
