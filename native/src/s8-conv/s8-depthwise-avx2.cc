// Depthwise int8 run kernel with AVX2: 16 channels at a time in two int32 accumulators that stay
// in registers from the bias across the taps to the stored values. Widen u8 -> i16, subtract the
// zero point, vpmullw by the int16 weights (the product fits int16 exactly: |x - zp| <= 255,
// |w| <= 128), widen to i32 and add: exact products, sums wrapping like the scalar ones.
#include "common/simd.h"

#include "s8-conv/s8-depthwise.h"

namespace kiln {

namespace {

// 8 int32 sums -> 8 int32 codes in [0, 255] (scale, clamp, round half to even, zero point).
inline __m256i requantize8(__m256i acc, const float* scale, __m256 lo, __m256 hi, __m256i zp) {
  __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(scale));
  y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(y), zp);
}

inline __m256i bias8(const int32_t* bias) {
  return bias != nullptr ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias)) : _mm256_setzero_si256();
}

}  // namespace

// The run kernel: 16 channels per block from the bias through the taps to the stored values.
void s8_depthwise_run_avx2(const S8DepthwiseRun& r) {
  const __m256i zx = _mm256_set1_epi16(static_cast<int16_t>(r.x_zero_point));
  const __m256i zy = _mm256_set1_epi32(r.y_zero_point);
  const __m256 lo = _mm256_set1_ps(r.lo), hi = _mm256_set1_ps(r.hi);
  const size_t c = r.channels;
  for (size_t p = 0; p < r.pixels; ++p) {
    const uint8_t* x = r.x + p * r.pixel_step;
    size_t ch = 0;
    for (; ch + 16 <= c; ch += 16) {
      __m256i a0 = bias8(r.bias != nullptr ? r.bias + ch : nullptr);
      __m256i a1 = bias8(r.bias != nullptr ? r.bias + ch + 8 : nullptr);
      for (size_t t = 0; t < r.taps; ++t) {
        const __m256i xv = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + r.offset[t] + ch))), zx);
        const __m256i prod = _mm256_mullo_epi16(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.weight + t * c + ch)));
        a0 = _mm256_add_epi32(a0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(prod)));
        a1 = _mm256_add_epi32(a1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(prod, 1)));
      }
      if (r.out_f32 != nullptr) {
        // fma(float(sum), scale, 0), as dequantize_f32 computes it.
        float* out = r.out_f32 + p * c + ch;
        const __m256 zero = _mm256_setzero_ps();
        _mm256_storeu_ps(out, _mm256_fmadd_ps(_mm256_cvtepi32_ps(a0), _mm256_loadu_ps(r.scale + ch), zero));
        _mm256_storeu_ps(out + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(a1), _mm256_loadu_ps(r.scale + ch + 8), zero));
        continue;
      }
      const __m256i q0 = requantize8(a0, r.scale + ch, lo, hi, zy);
      const __m256i q1 = requantize8(a1, r.scale + ch + 8, lo, hi, zy);
      // packs works per 128-bit lane: the permutes put channels 0..15 back in order.
      const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8);
      const __m256i bytes = _mm256_permute4x64_epi64(_mm256_packus_epi16(words, words), 0xD8);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(r.out + p * c + ch), _mm256_castsi256_si128(bytes));
    }
    for (; ch < c; ++ch) s8_depthwise_run_channel(r, x, p, ch);
  }
}

}  // namespace kiln
