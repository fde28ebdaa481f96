// AVX2 whole-plane im2col and col2im (conv/im2col-rows.h): vmaskmovps loads read padding lanes
// as zero without touching memory; a whole 8-column block takes a plain store.
#include "common/simd.h"
#include "common/masked-load-avx2.h"

#include "conv/im2col-rows.h"
#include "conv/im2col.h"

namespace kiln {
namespace {

struct Avx2 {
  static constexpr size_t kLanes = 8;
  static constexpr size_t kMaxBlocks = 16;  // rows up to 128 columns take the fast loops
  using Mask = __m256i;
  using Vec = __m256;
  // All-ones in lanes j with lo <= base + j < hi.
  static Mask lanes(ptrdiff_t base, ptrdiff_t lo, ptrdiff_t hi) {
    const __m256i index = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(base)));
    const __m256i below_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), index);
    const __m256i below_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lo)), index);
    return _mm256_andnot_si256(below_lo, below_hi);
  }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static void gather_even(const float* src, size_t n, float* dst) { f32_gather_even_avx2(src, n, dst); }
  // [a0 a2 b0 b2 | a4 a6 b4 b6], then its 64-bit quarters reordered 0, 2, 1, 3.
  static Vec even(Vec a, Vec b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
  }
  static Vec load(Mask m, const float* p) { return maskload_ps(p, m); }
  static void mask_store(float* p, Mask m, Vec v) { _mm256_maskstore_ps(p, m, v); }
  // A plain store when the block is whole.
  static void store(float* p, bool whole, Mask m, Vec v) {
    if (whole) {
      _mm256_storeu_ps(p, v);
    } else {
      _mm256_maskstore_ps(p, m, v);
    }
  }
};

}  // namespace

void f32_gather_even_avx2(const float* src, size_t n, float* dst) {
  size_t i = 0;
  // A block reads src[2i, 2i + 16): whole while 2i + 15 <= 2n - 2.
  for (; i + 8 < n; i += 8) _mm256_storeu_ps(dst + i, Avx2::even(_mm256_loadu_ps(src + 2 * i), _mm256_loadu_ps(src + 2 * i + 8)));
  for (; i < n; ++i) dst[i] = src[2 * i];
}

void f32_im2col_plane_avx2(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  im2col_plane<Avx2>(g, channels, input, col, ld);
}

void f32_col2im_plane_add_avx2(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  col2im_plane_add<Avx2>(g, channels, col, ld, grad_input);
}

}  // namespace kiln
