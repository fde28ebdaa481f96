// Depthwise int8 sums with AVX-512 (BW): 32 channels at a time in two int32 accumulators that
// stay in registers across the taps, the AVX2 file's steps on zmm; a 16-channel block and the
// scalar tail after. The run kernel (s8-depthwise-avx512.h) also requantizes in registers.
#include "common/simd.h"

#include "s8-conv/s8-depthwise-avx512.h"
#include "s8-conv/s8-depthwise.h"

namespace kiln {

void s8_depthwise_accumulate_avx512(const uint8_t* const* x, const int16_t* const* w, size_t taps, size_t channels,
                                    int32_t zero_point, uint32_t* acc) {
  const __m512i zp = _mm512_set1_epi16(static_cast<int16_t>(zero_point));
  size_t ch = 0;
  for (; ch + 32 <= channels; ch += 32) {
    __m512i a0 = _mm512_loadu_si512(acc + ch);
    __m512i a1 = _mm512_loadu_si512(acc + ch + 16);
    for (size_t t = 0; t < taps; ++t) {
      const __m512i xv = _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t] + ch))), zp);
      const __m512i p = _mm512_mullo_epi16(xv, _mm512_loadu_si512(w[t] + ch));
      a0 = _mm512_add_epi32(a0, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(p)));
      a1 = _mm512_add_epi32(a1, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(p, 1)));
    }
    _mm512_storeu_si512(acc + ch, a0);
    _mm512_storeu_si512(acc + ch + 16, a1);
  }
  if (ch + 16 <= channels) {
    const __m256i zp16 = _mm256_set1_epi16(static_cast<int16_t>(zero_point));
    __m512i a0 = _mm512_loadu_si512(acc + ch);
    for (size_t t = 0; t < taps; ++t) {
      const __m256i xv = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[t] + ch))), zp16);
      const __m256i p = _mm256_mullo_epi16(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[t] + ch)));
      a0 = _mm512_add_epi32(a0, _mm512_cvtepi16_epi32(p));
    }
    _mm512_storeu_si512(acc + ch, a0);
    ch += 16;
  }
  for (; ch < channels; ++ch) {
    uint32_t s = acc[ch];
    for (size_t t = 0; t < taps; ++t) s += static_cast<uint32_t>((static_cast<int32_t>(x[t][ch]) - zero_point) * w[t][ch]);
    acc[ch] = s;
  }
}

void s8_depthwise_run_u8_avx512(const S8DepthwiseRun& r) {
  for (size_t p = 0; p < r.pixels; ++p) s8_depthwise_pixel_avx512(r, r.x + p * r.pixel_step, r.out + p * r.channels, 0);
}

}  // namespace kiln
