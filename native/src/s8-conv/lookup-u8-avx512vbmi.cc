// QLinearLookup's rows with AVX-512 VBMI (quantize-rows.h). Built with the AVX-512 VNNI group's
// flags; VBMI comes from the function's own target attribute, so no other code of this file or
// group may use it, and dispatch reaches this function only where CPUID reports VBMI.
#include "common/simd.h"

#include "s8-conv/quantize-rows.h"

namespace kiln {
namespace {

// Entries 0-127 from (t0, t1) and 128-255 from (t2, t3), each by the index's low 7 bits; its top
// bit picks which.
__attribute__((target("avx512vbmi"))) inline __m512i look_up(__m512i v, __m512i t0, __m512i t1, __m512i t2, __m512i t3) {
  const __m512i low = _mm512_permutex2var_epi8(t0, v, t1);
  const __m512i high = _mm512_permutex2var_epi8(t2, v, t3);
  return _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), low, high);
}

}  // namespace

__attribute__((target("avx512vbmi"))) void lookup_u8_row_avx512vbmi(const uint8_t* table, const uint8_t* x, uint8_t* y,
                                                                     size_t n) {
  const __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    _mm512_storeu_si512(y + i, look_up(_mm512_loadu_si512(x + i), t0, t1, t2, t3));
  }
  if (i < n) {
    // Masked: the bytes past the row are neither read nor written.
    const __mmask64 m = (__mmask64{1} << (n - i)) - 1;
    _mm512_mask_storeu_epi8(y + i, m, look_up(_mm512_maskz_loadu_epi8(m, x + i), t0, t1, t2, t3));
  }
}

}  // namespace kiln
