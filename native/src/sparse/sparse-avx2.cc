// AVX2 SpMM kernels (sparse-tile.h): 8 pixels per ymm, 16 registers. Unstructured and 1x4
// blocks: one output, 4 vectors (32 pixels) x 2 accumulator sets; 4x1 blocks: 4 outputs x 2
// vectors; 8x1 blocks: 8 outputs x 1 vector (8 accumulators, each X load feeds 8 FMAs).
#include "common/simd.h"

#include "common/dispatch.h"
#include "sparse/sparse-tile.h"

namespace kiln {
namespace {

struct Avx2 {
  static constexpr size_t kLanes = 8;
  using Vec = __m256;
  using Mask = __m256i;
  static Mask tail_mask(size_t n) {
    const int valid = n >= 8 ? 8 : static_cast<int>(n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec set1(float x) { return _mm256_set1_ps(x); }
  static Vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Vec loadu(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load_tail(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void storeu(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static void store_tail(float* p, Mask m, Vec v) { _mm256_maskstore_ps(p, m, v); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
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
