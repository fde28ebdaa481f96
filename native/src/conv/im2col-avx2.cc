// AVX2 rows of the column matrix: vmaskmovps loads zero the padding lanes without reading them;
// full 8-column blocks are stored plainly, only the tail under a mask.
#include <immintrin.h>

#include "conv/im2col-plane.h"
#include "conv/im2col.h"

namespace kiln {
namespace {

// All-ones in lanes j with lo <= base + j < hi.
inline __m256i lanes(ptrdiff_t base, size_t lo, size_t hi) {
  const __m256i index = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(base)));
  const __m256i below_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), index);
  const __m256i below_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lo)), index);
  return _mm256_andnot_si256(below_lo, below_hi);
}

inline void store(float* dst, size_t i, size_t n, __m256 v) {
  if (i + 8 <= n) {
    _mm256_storeu_ps(dst + i, v);
  } else {
    _mm256_maskstore_ps(dst + i, lanes(static_cast<ptrdiff_t>(i), 0, n), v);
  }
}

struct RowAvx2 {
  static void zero(float* dst, size_t n) {
    for (size_t i = 0; i < n; i += 8) store(dst, i, n, _mm256_setzero_ps());
  }
  static void copy(float* dst, size_t n, const float* row, ptrdiff_t offset, size_t lo, size_t hi) {
    for (size_t i = 0; i < n; i += 8) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const __m256 v = _mm256_maskload_ps(offset_address(row, offset + at), lanes(at, lo, hi));
      store(dst, i, n, v);
    }
  }
  static void add(float* row, ptrdiff_t offset, const float* src, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i += 8) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const __m256i m = lanes(at, lo, hi);
      float* target = offset_address(row, offset + at);
      const __m256 sum = _mm256_add_ps(_mm256_maskload_ps(target, m), _mm256_maskload_ps(src + i, m));
      _mm256_maskstore_ps(target, m, sum);
    }
  }
};

}  // namespace

void im2col_plane_avx2(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  im2col_plane_with<RowAvx2>(g, channels, input, col, ld);
}

void col2im_plane_add_avx2(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  col2im_plane_add_with<RowAvx2>(g, channels, col, ld, grad_input);
}

}  // namespace kiln
