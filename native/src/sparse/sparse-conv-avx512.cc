// AVX-512 direct sparse convolution kernels (sparse-conv-tile.h): 16 positions per zmm, 32
// registers. One channel: up to 16 accumulators (a 13x13 CIFAR output on a 15 pitch, 193
// positions, is one tile of 13); 4x1 blocks: 4 channels x up to 6 vectors (24 accumulators, each
// load feeds 4 FMAs); 8x1 blocks: 8 channels x up to 3 vectors (24 accumulators).
#include "common/simd.h"

#include "common/dispatch.h"
#include "common/f32-vec.h"
#include "sparse/sparse-conv-tile.h"

namespace kiln {
namespace {

struct Avx512 : F32Avx512 {
  static Mask tail_mask(size_t n) { return first_lanes(n); }
  static Vec max_pairs(Vec lo, Vec hi) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_max_ps(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi));
  }
};

}  // namespace

void f32_sparse_conv_1_avx512(const F32SparseConvArgs& a) { sparse_conv_detail::conv<Avx512, 1, 16>(a); }
void f32_sparse_conv_4_avx512(const F32SparseConvArgs& a) { sparse_conv_detail::conv<Avx512, 4, 6>(a); }
void f32_sparse_conv_8_avx512(const F32SparseConvArgs& a) { sparse_conv_detail::conv<Avx512, 8, 3>(a); }

void f32_sparse_conv_max_pool_avx512(const F32SparseConvPoolArgs& a) { sparse_conv_detail::max_pool<Avx512>(a); }

void fill_f32_sparse_conv_avx512(DispatchTable* t) {
  F32SparseConvKernels& k = t->f32_sparse_conv;
  k.kernel[0] = f32_sparse_conv_1_avx512;
  k.kernel[1] = f32_sparse_conv_4_avx512;
  k.kernel[2] = f32_sparse_conv_8_avx512;
  k.max_pool = f32_sparse_conv_max_pool_avx512;
}

}  // namespace kiln
