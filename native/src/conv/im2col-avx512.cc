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
  static Vec load(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void mask_store(float* p, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
  static void store(float* p, bool, Mask m, Vec v) { _mm512_mask_storeu_ps(p, m, v); }
};

}  // namespace

void f32_im2col_plane_avx512(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  im2col_plane<Avx512>(g, channels, input, col, ld);
}

void f32_col2im_plane_add_avx512(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  col2im_plane_add<Avx512>(g, channels, col, ld, grad_input);
}

}  // namespace kiln
