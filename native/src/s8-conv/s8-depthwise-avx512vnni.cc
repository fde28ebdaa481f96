// Depthwise int8 run kernel with AVX-512 VNNI: four taps per vpdpbusd. The four taps' input
// bytes of 64 channels are interleaved by two rounds of unpacks (bytes, then words) into four
// vectors whose dword (lane L, j) holds channel 16L + 4k + j's four taps, which meet their int8
// weights in the quad layout (s8_depthwise_pack_quads). Against the AVX-512 kernel's pairs
// through vpmaddwd, that is 8 shuffles per 4 taps of 64 channels instead of 16 and one
// instruction per 64 products instead of two. 32 channels left over (32, 96, 480 ...) run the
// same steps on two pixels at once, one per half of each vector. The sums are exact (u8 x s8,
// four per dword), so the bits are the scalar kernel's; the rest of each pixel runs as on AVX-512.
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

  // 64 channels from `ch` of one block: x0 / x1 give each tap's input address for the low and
  // the high 32 bytes of the vector (the same pixel for a full block; two pixels for the half
  // block), `store` takes the 64 requantized codes in channel order per 32-byte half.
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
};

}  // namespace

void s8_depthwise_run_u8_avx512vnni(const S8DepthwiseRun& r) {
  const size_t c = r.channels;
  const QuadStep step{r, (r.taps + 3) / 4, _mm512_set1_epi32(r.y_zero_point), _mm512_set1_ps(r.lo), _mm512_set1_ps(r.hi)};
  const size_t blocks = r.quad_weight != nullptr ? c / kS8DepthwiseQuadBlock : 0;
  const bool half = r.quad_weight != nullptr && c % kS8DepthwiseQuadBlock >= kS8DepthwiseQuadBlock / 2;
  size_t p = 0;
  if (half) {
    const size_t h = blocks * kS8DepthwiseQuadBlock;  // the half block's first channel
    const int8_t* wp = r.quad_weight + blocks * step.quads * kS8DepthwiseQuadWeights;
    for (; p + 2 <= r.pixels; p += 2) {
      const uint8_t* x0 = r.x + p * r.pixel_step;
      const uint8_t* x1 = x0 + r.pixel_step;
      uint8_t* out0 = r.out + p * c;
      uint8_t* out1 = out0 + c;
      step.full_blocks(blocks, x0, out0);
      step.full_blocks(blocks, x1, out1);
      step.block(
          wp, r.quad_bias + h, r.quad_scale + h,
          [&](ptrdiff_t off) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x0 + off + h));
            const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x1 + off + h));
            return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
          },
          [&](__m512i v) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out0 + h), _mm512_castsi512_si256(v));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out1 + h), _mm512_extracti64x4_epi64(v, 1));
          });
      s8_depthwise_pixel_avx512(r, x0, out0, h + kS8DepthwiseQuadBlock / 2);
      s8_depthwise_pixel_avx512(r, x1, out1, h + kS8DepthwiseQuadBlock / 2);
    }
  }
  for (; p < r.pixels; ++p) {
    const uint8_t* x = r.x + p * r.pixel_step;
    uint8_t* out = r.out + p * c;
    s8_depthwise_pixel_avx512(r, x, out, step.full_blocks(blocks, x, out));
  }
}

}  // namespace kiln
