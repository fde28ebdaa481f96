// Depthwise int8 run kernel with AVX-512 VNNI: four taps per vpdpbusd. The four taps' input
// bytes of 64 channels are interleaved by two rounds of unpacks (bytes, then words) into four
// vectors whose dword (lane L, j) holds channel 16L + 4k + j's four taps, which meet their int8
// weights in the quad layout (s8_depthwise_pack_quads). Against the AVX-512 kernel's pairs
// through vpmaddwd, that is 8 shuffles per 4 taps of 64 channels instead of 16 and one
// instruction per 64 products instead of two. 32 channels left over (32, 96, 480 ...) run the
// same steps on two pixels at once, one per half of each vector, and 16 left over after that (16,
// 48, 112 ...) on four, one per 128-bit lane. The sums are exact (u8 x s8, four per dword), so the
// bits are the scalar kernel's; the rest of each pixel runs as on AVX-512.
#include "common/simd.h"

#include "s8-conv/s8-depthwise-avx512.h"
#include "s8-conv/s8-depthwise.h"

namespace kiln {
namespace {

struct QuadStep {
  const S8DepthwiseRun& r;
  size_t quads;
  __m512i zy;
  __m512 lo, hi;

  // One block of the layout: load(offset) gives a tap's 64 input bytes (64 channels of one pixel
  // for a full block; the half and quarter blocks' channels of 2 or 4 pixels side by side) and
  // `store` takes the 64 requantized codes in the same order.
  template <class Load, class Store>
  void block(const int8_t* wp, const int32_t* bias, const float* scale, Load load, Store store) const {
    const __m512i none = _mm512_setzero_si512();
    __m512i acc[4];
    for (int k = 0; k < 4; ++k) acc[k] = _mm512_loadu_si512(bias + 16 * k);
    for (size_t q = 0; q < quads; ++q, wp += kS8DepthwiseQuadWeights) {
      // Raw codes (the zero point is in the bias); taps past the last read nothing and weigh 0.
      __m512i xt[4];
      for (size_t i = 0; i < 4; ++i) {
        const size_t t = 4 * q + i;
        xt[i] = t < r.taps ? load(r.offset[t]) : none;
      }
      const __m512i lo01 = _mm512_unpacklo_epi8(xt[0], xt[1]), hi01 = _mm512_unpackhi_epi8(xt[0], xt[1]);
      const __m512i lo23 = _mm512_unpacklo_epi8(xt[2], xt[3]), hi23 = _mm512_unpackhi_epi8(xt[2], xt[3]);
      acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_unpacklo_epi16(lo01, lo23), _mm512_loadu_si512(wp));
      acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_unpackhi_epi16(lo01, lo23), _mm512_loadu_si512(wp + 64));
      acc[2] = _mm512_dpbusd_epi32(acc[2], _mm512_unpacklo_epi16(hi01, hi23), _mm512_loadu_si512(wp + 128));
      acc[3] = _mm512_dpbusd_epi32(acc[3], _mm512_unpackhi_epi16(hi01, hi23), _mm512_loadu_si512(wp + 192));
    }
    // acc[k] lane L holds channels 16L + 4k + j: within each lane the two packs put them back
    // in order (k = 0, 1 as words 0-7, then k = 2, 3 as bytes 8-15).
    __m512i codes[4];
    for (int k = 0; k < 4; ++k) codes[k] = s8_requantize16_codes(acc[k], scale + 16 * k, lo, hi, zy);
    store(_mm512_packus_epi16(_mm512_packs_epi32(codes[0], codes[1]), _mm512_packs_epi32(codes[2], codes[3])));
  }

  // The full blocks of one pixel; returns the first channel after them.
  size_t full_blocks(size_t blocks, const uint8_t* x, uint8_t* out) const {
    size_t ch = 0;
    for (size_t blk = 0; blk < blocks; ++blk, ch += kS8DepthwiseQuadBlock) {
      block(
          r.quad_weight + blk * quads * kS8DepthwiseQuadWeights, r.quad_bias + ch, r.quad_scale + ch,
          [&](ptrdiff_t off) { return _mm512_loadu_si512(x + off + ch); },
          [&](__m512i v) { _mm512_storeu_si512(out + ch, v); });
    }
    return ch;
  }

  // Block `blk` of the layout for 64 / W pixels at once: W channels from `ch` of pixel i in the
  // i-th W bytes of every vector (W = 32: the half block, 16: the quarter block).
  template <size_t W>
  void pixel_group(size_t blk, size_t ch, const uint8_t* const* x, uint8_t* const* out) const {
    block(
        r.quad_weight + blk * quads * kS8DepthwiseQuadWeights, r.quad_bias + blk * kS8DepthwiseQuadBlock,
        r.quad_scale + blk * kS8DepthwiseQuadBlock,
        [&](ptrdiff_t off) {
          if constexpr (W == 32) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[0] + off + ch));
            const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[1] + off + ch));
            return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
          }
          __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[0] + off + ch)));
          v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[1] + off + ch)), 1);
          v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[2] + off + ch)), 2);
          return _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[3] + off + ch)), 3);
        },
        [&](__m512i v) {
          if constexpr (W == 32) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[0] + ch), _mm512_castsi512_si256(v));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[1] + ch), _mm512_extracti64x4_epi64(v, 1));
            return;
          }
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out[0] + ch), _mm512_castsi512_si128(v));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out[1] + ch), _mm512_extracti32x4_epi32(v, 1));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out[2] + ch), _mm512_extracti32x4_epi32(v, 2));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out[3] + ch), _mm512_extracti32x4_epi32(v, 3));
        });
  }
};

}  // namespace

void s8_depthwise_run_u8_avx512vnni(const S8DepthwiseRun& r) {
  const size_t c = r.channels;
  if (r.quad_weight == nullptr) {
    for (size_t p = 0; p < r.pixels; ++p) s8_depthwise_pixel_avx512(r, r.x + p * r.pixel_step, r.out + p * c, 0);
    return;
  }
  const QuadStep step{r, (r.taps + 3) / 4, _mm512_set1_epi32(r.y_zero_point), _mm512_set1_ps(r.lo), _mm512_set1_ps(r.hi)};
  const S8DepthwiseQuadBlocks q(c);
  // Pixels in groups that fill the half and quarter blocks' vectors; the last few, and every
  // pixel where there are neither, take the full blocks and then the AVX-512 pairs.
  const size_t group = q.quarter ? 4 : q.half ? 2 : 1;
  size_t p = 0;
  if (group > 1) {
    for (; p + group <= r.pixels; p += group) {
      const uint8_t* x[4];
      uint8_t* out[4];
      for (size_t i = 0; i < group; ++i) {
        x[i] = r.x + (p + i) * r.pixel_step;
        out[i] = r.out + (p + i) * c;
        step.full_blocks(q.full, x[i], out[i]);
      }
      if (q.half) {
        for (size_t i = 0; i < group; i += 2) step.pixel_group<32>(q.full, q.half_channel(), x + i, out + i);
      }
      if (q.quarter) step.pixel_group<16>(q.full + (q.half ? 1 : 0), q.quarter_channel(), x, out);
      for (size_t i = 0; i < group; ++i) s8_depthwise_pixel_avx512(r, x[i], out[i], q.rest_channel());
    }
  }
  for (; p < r.pixels; ++p) {
    const uint8_t* x = r.x + p * r.pixel_step;
    uint8_t* out = r.out + p * c;
    s8_depthwise_pixel_avx512(r, x, out, step.full_blocks(q.full, x, out));
  }
}

}  // namespace kiln
