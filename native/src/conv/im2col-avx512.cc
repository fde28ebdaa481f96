// AVX-512 rows of the column matrix: one masked load and one masked store per 16 columns, the
// mask zeroing the padding lanes (masked-off lanes are never read, so no fault at row ends).
#include <immintrin.h>

#include "conv/im2col-plane.h"
#include "conv/im2col.h"

namespace kiln {
namespace {

// Lanes j with lo <= base + j < hi.
inline __mmask16 lanes(ptrdiff_t base, size_t lo, size_t hi) {
  ptrdiff_t a = static_cast<ptrdiff_t>(lo) - base;
  ptrdiff_t b = static_cast<ptrdiff_t>(hi) - base;
  a = a < 0 ? 0 : (a > 16 ? 16 : a);
  b = b < 0 ? 0 : (b > 16 ? 16 : b);
  const uint32_t upto_b = (1u << b) - 1u;
  const uint32_t upto_a = (1u << a) - 1u;
  return static_cast<__mmask16>(upto_b & ~upto_a);
}

struct RowAvx512 {
  static void zero(float* dst, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
      _mm512_mask_storeu_ps(dst + i, lanes(static_cast<ptrdiff_t>(i), 0, n), _mm512_setzero_ps());
    }
  }
  static void copy(float* dst, size_t n, const float* row, ptrdiff_t offset, size_t lo, size_t hi) {
    for (size_t i = 0; i < n; i += 16) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const __m512 v = _mm512_maskz_loadu_ps(lanes(at, lo, hi), offset_address(row, offset + at));
      _mm512_mask_storeu_ps(dst + i, lanes(at, 0, n), v);
    }
  }
  static void add(float* row, ptrdiff_t offset, const float* src, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i += 16) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const __mmask16 m = lanes(at, lo, hi);
      float* target = offset_address(row, offset + at);
      const __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(m, target), _mm512_maskz_loadu_ps(m, src + i));
      _mm512_mask_storeu_ps(target, m, sum);
    }
  }
};

}  // namespace

void im2col_plane_avx512(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  im2col_plane_with<RowAvx512>(g, channels, input, col, ld);
}

void col2im_plane_add_avx512(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  col2im_plane_add_with<RowAvx512>(g, channels, col, ld, grad_input);
}

}  // namespace kiln
