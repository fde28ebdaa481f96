// Depthwise int8 sums with AVX2: 16 channels at a time in two int32 accumulators that stay in
// registers across the taps. Widen u8 -> i16, subtract the zero point, vpmullw by the int16
// weights (the product fits int16 exactly: |x - zp| <= 255, |w| <= 128), widen to i32 and add:
// exact products, sums wrapping like the scalar ones.
#include "common/simd.h"

#include "s8-conv/s8-depthwise.h"

namespace kiln {

void s8_depthwise_accumulate_avx2(const uint8_t* const* x, const int16_t* const* w, size_t taps, size_t channels,
                                  int32_t zero_point, uint32_t* acc) {
  const __m256i zp = _mm256_set1_epi16(static_cast<int16_t>(zero_point));
  size_t ch = 0;
  for (; ch + 16 <= channels; ch += 16) {
    __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + ch));
    __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + ch + 8));
    for (size_t t = 0; t < taps; ++t) {
      const __m256i xv = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[t] + ch))), zp);
      const __m256i p = _mm256_mullo_epi16(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[t] + ch)));
      a0 = _mm256_add_epi32(a0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(p)));
      a1 = _mm256_add_epi32(a1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(p, 1)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + ch), a0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + ch + 8), a1);
  }
  for (; ch < channels; ++ch) {
    uint32_t s = acc[ch];
    for (size_t t = 0; t < taps; ++t) s += static_cast<uint32_t>((static_cast<int32_t>(x[t][ch]) - zero_point) * w[t][ch]);
    acc[ch] = s;
  }
}

}  // namespace kiln
