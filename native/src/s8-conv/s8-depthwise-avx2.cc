// Depthwise int8 sums with AVX2: 16 channels at a time in two int32 accumulators that stay in
// registers across the taps (widen u8 -> i32, subtract the zero point, vpmulld by the widened
// int16 weights, vpaddd: exact products, sums wrapping like the scalar ones).
#include "common/simd.h"

#include "s8-conv/s8-depthwise.h"

namespace kiln {

void s8_depthwise_accumulate_avx2(const uint8_t* const* x, const int16_t* const* w, size_t taps, size_t channels,
                                  int32_t zero_point, uint32_t* acc) {
  const __m256i zp = _mm256_set1_epi32(zero_point);
  size_t ch = 0;
  for (; ch + 16 <= channels; ch += 16) {
    __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + ch));
    __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + ch + 8));
    for (size_t t = 0; t < taps; ++t) {
      const __m128i xv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[t] + ch));
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[t] + ch));
      const __m256i x0 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(xv), zp);
      const __m256i x1 = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(xv, 8)), zp);
      const __m256i w0 = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(wv));
      const __m256i w1 = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(wv, 1));
      a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(x0, w0));
      a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(x1, w1));
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
