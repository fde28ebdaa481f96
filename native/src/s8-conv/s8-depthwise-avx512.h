// The AVX-512 (BW) depthwise run kernel's per-pixel body, shared by s8-depthwise-avx512.cc and the
// VNNI file, which runs its own blocks of 64 channels first and hands the rest to it. Included
// only by translation units built with AVX-512 BW flags (internal linkage: one copy each).
#pragma once
#include "common/simd.h"

#include "s8-conv/s8-depthwise.h"

namespace kiln {
namespace {

// 16 int32 sums -> 16 int32 codes in [0, 255] (scale, clamp, round, zero point): cvtps2dq rounds
// half to even in the default mode, as std::nearbyint does; the clamp comes first, as in
// requantize_u8.
inline __m512i s8_requantize16_codes(__m512i acc, __m512 scale, __m512 lo, __m512 hi, __m512i zp) {
  __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
  y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
  return _mm512_add_epi32(_mm512_cvtps_epi32(y), zp);
}

inline __m512i s8_requantize16_codes(__m512i acc, const float* scale, __m512 lo, __m512 hi, __m512i zp) {
  return s8_requantize16_codes(acc, _mm512_loadu_ps(scale), lo, hi, zp);
}

// The same, stored as 16 bytes.
inline void s8_requantize16(__m512i acc, const float* scale, __m512 lo, __m512 hi, __m512i zp, uint8_t* out) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(s8_requantize16_codes(acc, scale, lo, hi, zp)));
}

inline __m512i s8_bias16(const int32_t* bias) {
  return bias != nullptr ? _mm512_loadu_si512(bias) : _mm512_setzero_si512();
}

// fma(float(sum), scale, 0) for 16 sums, as dequantize_f32 computes it.
inline __m512 s8_dequantize16(__m512i acc, __m512 scale) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), scale, _mm512_setzero_ps());
}

// 16 sums of channels [ch, ch + 16) in order to pixel p's output: requantized bytes or floats.
inline void s8_depthwise_store16(const S8DepthwiseRun& r, __m512i acc, size_t p, size_t ch, __m512 lo, __m512 hi,
                                 __m512i zy) {
  const size_t at = p * r.channels + ch;
  if (r.out_f32 != nullptr) {
    _mm512_storeu_ps(r.out_f32 + at, s8_dequantize16(acc, _mm512_loadu_ps(r.scale + ch)));
  } else {
    s8_requantize16(acc, r.scale + ch, lo, hi, zy, r.out + at);
  }
}

// Channels [ch, channels) of pixel p of the run (tap-0 input `x`); `ch` is a multiple of
// kS8DepthwisePairBlock, or past the last full pair block.
inline void s8_depthwise_pixel_avx512(const S8DepthwiseRun& r, const uint8_t* x, size_t p, size_t ch) {
  const __m512i zx = _mm512_set1_epi16(static_cast<int16_t>(r.x_zero_point));
  const __m256i zx16 = _mm256_set1_epi16(static_cast<int16_t>(r.x_zero_point));
  const __m512i zy = _mm512_set1_epi32(r.y_zero_point);
  const __m512 lo = _mm512_set1_ps(r.lo), hi = _mm512_set1_ps(r.hi);
  const size_t c = r.channels;
  const size_t pair_blocks = r.pair_weight != nullptr ? c / kS8DepthwisePairBlock : 0, pairs = (r.taps + 1) / 2;
  // Pairs of taps through vpmaddwd on raw codes (the zero point is in the bias): the widened
  // inputs of taps 2i and 2i + 1 interleaved per lane meet their weights side by side.
  for (size_t blk = ch / kS8DepthwisePairBlock; blk < pair_blocks; ++blk, ch += kS8DepthwisePairBlock) {
    const int16_t* wp = r.pair_weight + blk * pairs * kS8DepthwisePairWeights;
    __m512i a0 = _mm512_loadu_si512(r.pair_bias + ch);
    __m512i a1 = _mm512_loadu_si512(r.pair_bias + ch + 16);
    for (size_t i = 0; i < pairs; ++i, wp += kS8DepthwisePairWeights) {
      const size_t t = 2 * i;
      const __m512i x0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + r.offset[t] + ch)));
      const __m512i x1 = t + 1 < r.taps ? _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + r.offset[t + 1] + ch)))
                                        : _mm512_setzero_si512();
      a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(_mm512_unpacklo_epi16(x0, x1), _mm512_loadu_si512(wp)));
      a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(_mm512_unpackhi_epi16(x0, x1), _mm512_loadu_si512(wp + 32)));
    }
    // a0 holds channels 8g + j, a1 8g + 4 + j (lane g, j < 4).
    if (r.out_f32 != nullptr) {
      // Lanes of the two, interleaved: [a0.0, a1.0, a0.1, a1.1] and [a0.2, a1.2, a0.3, a1.3].
      const __m512 f0 = s8_dequantize16(a0, _mm512_loadu_ps(r.pair_scale + ch));
      const __m512 f1 = s8_dequantize16(a1, _mm512_loadu_ps(r.pair_scale + ch + 16));
      const __m512 low = _mm512_shuffle_f32x4(f0, f1, 0x44), high = _mm512_shuffle_f32x4(f0, f1, 0xEE);
      float* out = r.out_f32 + p * c + ch;
      _mm512_storeu_ps(out, _mm512_shuffle_f32x4(low, low, 0xD8));
      _mm512_storeu_ps(out + 16, _mm512_shuffle_f32x4(high, high, 0xD8));
      continue;
    }
    // packs puts each lane's 8 back in order.
    const __m512i q0 = s8_requantize16_codes(a0, r.pair_scale + ch, lo, hi, zy);
    const __m512i q1 = s8_requantize16_codes(a1, r.pair_scale + ch + 16, lo, hi, zy);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(r.out + p * c + ch), _mm512_cvtepi16_epi8(_mm512_packs_epi32(q0, q1)));
  }
  for (; ch + 32 <= c; ch += 32) {
    __m512i a0 = s8_bias16(r.bias != nullptr ? r.bias + ch : nullptr);
    __m512i a1 = s8_bias16(r.bias != nullptr ? r.bias + ch + 16 : nullptr);
    for (size_t t = 0; t < r.taps; ++t) {
      const __m512i xv = _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + r.offset[t] + ch))), zx);
      const __m512i prod = _mm512_mullo_epi16(xv, _mm512_loadu_si512(r.weight + t * c + ch));
      a0 = _mm512_add_epi32(a0, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(prod)));
      a1 = _mm512_add_epi32(a1, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(prod, 1)));
    }
    s8_depthwise_store16(r, a0, p, ch, lo, hi, zy);
    s8_depthwise_store16(r, a1, p, ch + 16, lo, hi, zy);
  }
  if (ch + 16 <= c) {
    __m512i a0 = s8_bias16(r.bias != nullptr ? r.bias + ch : nullptr);
    for (size_t t = 0; t < r.taps; ++t) {
      const __m256i xv = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + r.offset[t] + ch))), zx16);
      const __m256i prod = _mm256_mullo_epi16(xv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.weight + t * c + ch)));
      a0 = _mm512_add_epi32(a0, _mm512_cvtepi16_epi32(prod));
    }
    s8_depthwise_store16(r, a0, p, ch, lo, hi, zy);
    ch += 16;
  }
  if (ch < c) {
    // The last 1-15 channels as one masked block: nothing past the channels is read or written.
    const __mmask16 m = static_cast<__mmask16>((1u << (c - ch)) - 1);
    __m512i a0 = r.bias != nullptr ? _mm512_maskz_loadu_epi32(m, r.bias + ch) : _mm512_setzero_si512();
    for (size_t t = 0; t < r.taps; ++t) {
      const __m256i xv = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, x + r.offset[t] + ch)), zx16);
      const __m256i prod = _mm256_mullo_epi16(xv, _mm256_maskz_loadu_epi16(m, r.weight + t * c + ch));
      a0 = _mm512_add_epi32(a0, _mm512_cvtepi16_epi32(prod));
    }
    const __m512 scale = _mm512_maskz_loadu_ps(m, r.scale + ch);
    if (r.out_f32 != nullptr) {
      _mm512_mask_storeu_ps(r.out_f32 + p * c + ch, m, s8_dequantize16(a0, scale));
    } else {
      _mm_mask_storeu_epi8(r.out + p * c + ch, m, _mm512_cvtepi32_epi8(s8_requantize16_codes(a0, scale, lo, hi, zy)));
    }
  }
}

}  // namespace
}  // namespace kiln
