// AVX-512 whole-plane im2col and col2im (conv/im2col-rows.h): mask registers, every store masked.
#include "common/simd.h"

#include "conv/im2col-rows.h"
#include "conv/im2col.h"

namespace kiln {
namespace {

struct Avx512 {
  static constexpr size_t kLanes = 16;
  static constexpr size_t kMaxBlocks = 8;  // rows up to 128 columns take the fast loops
  using Mask = __mmask16;
  using Vec = __m512;
  // Lanes j with lo <= base + j < hi.
  static Mask lanes(ptrdiff_t base, ptrdiff_t lo, ptrdiff_t hi) {
    ptrdiff_t a = lo - base;
    ptrdiff_t b = hi - base;
    a = a < 0 ? 0 : (a > 16 ? 16 : a);
    b = b < 0 ? 0 : (b > 16 ? 16 : b);
    if (b <= a) return 0;
    return static_cast<__mmask16>(((1u << b) - 1u) & ~((1u << a) - 1u));
  }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static void gather_even(const float* src, size_t n, float* dst) { f32_gather_even_avx512(src, n, dst); }
  static Vec even(Vec a, Vec b) {
    return _mm512_permutex2var_ps(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
  }
  static Vec load(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void mask_store(float* p, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
  static void store(float* p, bool, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
};

}  // namespace

void f32_gather_even_avx512(const float* src, size_t n, float* dst) {
  size_t i = 0;
  // A block reads src[2i, 2i + 32): whole while 2i + 31 <= 2n - 2.
  for (; i + 16 < n; i += 16) _mm512_storeu_ps(dst + i, Avx512::even(_mm512_loadu_ps(src + 2 * i), _mm512_loadu_ps(src + 2 * i + 16)));
  if (i < n) {
    // The last 1..16 outputs read 2 (n - i) - 1 floats.
    const size_t m = 2 * (n - i) - 1;
    const __mmask16 lo = static_cast<__mmask16>(m >= 16 ? 0xFFFFu : (1u << m) - 1u);
    const __mmask16 hi = static_cast<__mmask16>(m <= 16 ? 0u : (1u << (m - 16)) - 1u);
    const __m512 v = Avx512::even(_mm512_maskz_loadu_ps(lo, src + 2 * i), _mm512_maskz_loadu_ps(hi, src + 2 * i + 16));
    _mm512_mask_storeu_ps(dst + i, static_cast<__mmask16>((1u << (n - i)) - 1u), v);
  }
}

void f32_im2col_plane_avx512(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  im2col_plane<Avx512>(g, channels, input, col, ld);
}

void f32_col2im_plane_add_avx512(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  col2im_plane_add<Avx512>(g, channels, col, ld, grad_input);
}

}  // namespace kiln
