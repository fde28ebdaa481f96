// Depthwise int8 run kernel with AVX-512 VNNI: four taps per vpdpbusd. The four taps' input
// bytes of 64 channels are interleaved by two rounds of unpacks (bytes, then words) into four
// vectors whose dword (lane L, j) holds channel 16L + 4k + j's four taps, which meet their int8
// weights in the quad layout (s8_depthwise_pack_quads). Against the AVX-512 kernel's pairs
// through vpmaddwd, that is 8 shuffles per 4 taps of 64 channels instead of 16 and one
// instruction per 64 products instead of two. The sums are exact (u8 x s8, four per dword), so
// the bits are the scalar kernel's; the rest of each pixel runs as on AVX-512.
#include "common/simd.h"

#include "s8-conv/s8-depthwise-avx512.h"
#include "s8-conv/s8-depthwise.h"

namespace kiln {

void s8_depthwise_run_u8_avx512vnni(const S8DepthwiseRun& r) {
  const __m512i zy = _mm512_set1_epi32(r.y_zero_point);
  const __m512 lo = _mm512_set1_ps(r.lo), hi = _mm512_set1_ps(r.hi);
  const size_t c = r.channels;
  const size_t blocks = r.quad_weight != nullptr ? c / kS8DepthwiseQuadBlock : 0, quads = (r.taps + 3) / 4;
  const __m512i none = _mm512_setzero_si512();
  for (size_t p = 0; p < r.pixels; ++p) {
    const uint8_t* x = r.x + p * r.pixel_step;
    uint8_t* out = r.out + p * c;
    size_t ch = 0;
    for (size_t blk = 0; blk < blocks; ++blk, ch += kS8DepthwiseQuadBlock) {
      const int8_t* wp = r.quad_weight + blk * quads * kS8DepthwiseQuadWeights;
      const int32_t* bias = r.quad_bias + ch;
      __m512i acc[4];
      for (int k = 0; k < 4; ++k) acc[k] = _mm512_loadu_si512(bias + 16 * k);
      for (size_t q = 0; q < quads; ++q, wp += kS8DepthwiseQuadWeights) {
        // Raw codes (the zero point is in the bias); taps past the last read nothing and weigh 0.
        __m512i xt[4];
        for (size_t i = 0; i < 4; ++i) {
          const size_t t = 4 * q + i;
          xt[i] = t < r.taps ? _mm512_loadu_si512(x + r.offset[t] + ch) : none;
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
      for (int k = 0; k < 4; ++k) codes[k] = s8_requantize16_codes(acc[k], r.quad_scale + ch + 16 * k, lo, hi, zy);
      const __m512i words01 = _mm512_packs_epi32(codes[0], codes[1]);
      const __m512i words23 = _mm512_packs_epi32(codes[2], codes[3]);
      _mm512_storeu_si512(out + ch, _mm512_packus_epi16(words01, words23));
    }
    s8_depthwise_pixel_avx512(r, x, out, ch);
  }
}

}  // namespace kiln
