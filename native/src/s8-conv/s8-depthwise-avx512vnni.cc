// Depthwise int8 run kernel with AVX-512 VNNI: four taps per vpdpbusd. The four taps' input
// bytes of 64 channels are interleaved by two rounds of unpacks (bytes, then words) into four
// vectors whose dword (lane L, j) holds channel 16L + 4k + j's four taps, which meet their int8
// weights in the quad layout (s8_depthwise_pack_quads). Against the AVX-512 kernel's pairs
// through vpmaddwd, that is 8 shuffles per 4 taps of 64 channels instead of 16 and one
// instruction per 64 products instead of two. 32 channels left over (32, 96, 480 ...) run the
// same steps on two pixels at once, one per half of each vector, and 16 left over after that (16,
// 48, 112 ...) on four, one per 128-bit lane. The sums are exact (u8 x s8, four per dword), so the
// bits are the scalar kernel's (a float output: dequantized in registers, the lanes transposed back
// into channel order); the rest of each pixel runs as on AVX-512.
//
// Blocks are the outer loop and pixels the inner one, so a block's weights, bias and scales stay
// in registers (or L1) across the run. The 3x3, 5x5 and 7x7 kernels are compiled for their tap
// count: the quads unroll, and the zero taps that pad the last quad cost no load.
#include "common/simd.h"

#include "s8-conv/s8-depthwise-avx512.h"
#include "s8-conv/s8-depthwise.h"

namespace kiln {
namespace {

// The run's epilogue constants.
struct Requant {
  __m512i zy;
  __m512 lo, hi;
};

// Bias + the quads of taps of one block: load(offset) gives a tap's 64 input bytes, in the
// block's channel order, and weight(i) the i-th 64 weights of the block's quad layout. kTaps is
// the run's tap count, or 0 for any (`taps`).
template <size_t kTaps, class Load, class Weight>
inline void quad_sums(size_t taps, const ptrdiff_t* offset, Weight weight, const int32_t* bias, Load load,
                      __m512i acc[4]) {
  const size_t n = kTaps != 0 ? kTaps : taps;
  for (int k = 0; k < 4; ++k) acc[k] = _mm512_load_si512(bias + 16 * k);
#pragma GCC unroll 16
  for (size_t q = 0; q < (n + 3) / 4; ++q) {
    // Raw codes (the zero point is in the bias); taps past the last read nothing and weigh 0.
    __m512i xt[4];
#pragma GCC unroll 4
    for (size_t i = 0; i < 4; ++i) xt[i] = 4 * q + i < n ? load(offset[4 * q + i]) : _mm512_setzero_si512();
    const __m512i lo01 = _mm512_unpacklo_epi8(xt[0], xt[1]), hi01 = _mm512_unpackhi_epi8(xt[0], xt[1]);
    const __m512i lo23 = _mm512_unpacklo_epi8(xt[2], xt[3]), hi23 = _mm512_unpackhi_epi8(xt[2], xt[3]);
    acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_unpacklo_epi16(lo01, lo23), weight(4 * q));
    acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_unpackhi_epi16(lo01, lo23), weight(4 * q + 1));
    acc[2] = _mm512_dpbusd_epi32(acc[2], _mm512_unpacklo_epi16(hi01, hi23), weight(4 * q + 2));
    acc[3] = _mm512_dpbusd_epi32(acc[3], _mm512_unpackhi_epi16(hi01, hi23), weight(4 * q + 3));
  }
}

// The weights of one block, read from the layout as the sums need them (a memory operand of
// vpdpbusd).
struct WeightsInMemory {
  const int8_t* wp;
  __m512i operator()(size_t i) const { return _mm512_load_si512(wp + 64 * i); }
};

// The same, loaded once for a run's pixels: up to three quads (3x3 kernels) stay in registers.
template <size_t kQuads>
struct WeightsInRegisters {
  __m512i w[4 * kQuads];
  explicit WeightsInRegisters(const int8_t* wp) {
    for (size_t i = 0; i < 4 * kQuads; ++i) w[i] = _mm512_load_si512(wp + 64 * i);
  }
  __m512i operator()(size_t i) const { return w[i]; }
};

// Register-held weights where the kernel has at most three quads of taps.
template <size_t kTaps>
auto block_weights(const int8_t* wp) {
  if constexpr (kTaps != 0 && kTaps <= 12) {
    return WeightsInRegisters<(kTaps + 3) / 4>(wp);
  } else {
    return WeightsInMemory{wp};
  }
}

// acc[k] lane L holds channels 16L + 4k + j (the slot order of the packed scales): within each
// lane the two packs put them back in order (k = 0, 1 as words 0-7, then k = 2, 3 as bytes 8-15).
inline __m512i quad_codes(const __m512i acc[4], const float* scale, const Requant& rq) {
  __m512i codes[4];
  for (int k = 0; k < 4; ++k) codes[k] = s8_requantize16_codes(acc[k], scale + 16 * k, rq.lo, rq.hi, rq.zy);
  return _mm512_packus_epi16(_mm512_packs_epi32(codes[0], codes[1]), _mm512_packs_epi32(codes[2], codes[3]));
}

// The same sums dequantized: v[L] holds lane L's 16 channels in order (the 4 x 4 transpose of
// the four vectors' 128-bit lanes puts acc[0..3]'s lane L side by side).
inline void quad_floats(const __m512i acc[4], const float* scale, __m512 v[4]) {
  __m512 f[4];
  for (int k = 0; k < 4; ++k) f[k] = s8_dequantize16(acc[k], _mm512_load_ps(scale + 16 * k));
  const __m512 t0 = _mm512_shuffle_f32x4(f[0], f[1], 0x44), t1 = _mm512_shuffle_f32x4(f[0], f[1], 0xEE);
  const __m512 t2 = _mm512_shuffle_f32x4(f[2], f[3], 0x44), t3 = _mm512_shuffle_f32x4(f[2], f[3], 0xEE);
  v[0] = _mm512_shuffle_f32x4(t0, t2, 0x88);
  v[1] = _mm512_shuffle_f32x4(t0, t2, 0xDD);
  v[2] = _mm512_shuffle_f32x4(t1, t3, 0x88);
  v[3] = _mm512_shuffle_f32x4(t1, t3, 0xDD);
}

// The full 64-channel blocks of every pixel of the run.
template <size_t kTaps>
void full_blocks(const S8DepthwiseRun& r, const Requant& rq, size_t blocks) {
  const size_t quads = (r.taps + 3) / 4, c = r.channels;
  for (size_t blk = 0; blk < blocks; ++blk) {
    const size_t ch = blk * kS8DepthwiseQuadBlock;
    const int8_t* wp = r.quad_weight + blk * quads * kS8DepthwiseQuadWeights;
    const uint8_t* x = r.x + ch;
    const auto weight = block_weights<kTaps>(wp);
    for (size_t p = 0; p < r.pixels; ++p, x += r.pixel_step) {
      __m512i acc[4];
      quad_sums<kTaps>(r.taps, r.offset, weight, r.quad_bias + ch, [x](ptrdiff_t off) { return _mm512_loadu_si512(x + off); },
                       acc);
      if (r.out_f32 != nullptr) {
        __m512 v[4];
        quad_floats(acc, r.quad_scale + ch, v);
        for (size_t lane = 0; lane < 4; ++lane) _mm512_storeu_ps(r.out_f32 + p * c + ch + 16 * lane, v[lane]);
        continue;
      }
      _mm512_storeu_si512(r.out + p * c + ch, quad_codes(acc, r.quad_scale + ch, rq));
    }
  }
}

// Block `blk` of the layout for 64 / W pixels at once (W = 32: the half block, 16: the quarter
// block), over the first `pixels` pixels of the run (a multiple of 64 / W): W channels from `ch`
// of pixel i in the i-th W bytes of every vector. Where the run's pixels are exactly W channels
// apart (W channels, stride 1), a group's taps and outputs are one contiguous 64-byte vector.
template <size_t kTaps, size_t W>
void pixel_groups(const S8DepthwiseRun& r, const Requant& rq, size_t blk, size_t ch, size_t pixels) {
  constexpr size_t kGroup = 64 / W;
  const size_t quads = (r.taps + 3) / 4, c = r.channels, step = r.pixel_step;
  const int8_t* wp = r.quad_weight + blk * quads * kS8DepthwiseQuadWeights;
  const int32_t* bias = r.quad_bias + blk * kS8DepthwiseQuadBlock;
  const float* scale = r.quad_scale + blk * kS8DepthwiseQuadBlock;
  const bool contiguous = c == W && step == W;
  const auto weight = block_weights<kTaps>(wp);
  for (size_t p = 0; p < pixels; p += kGroup) {
    const uint8_t* x = r.x + p * step + ch;
    __m512i acc[4];
    if (contiguous) {
      quad_sums<kTaps>(r.taps, r.offset, weight, bias, [x](ptrdiff_t off) { return _mm512_loadu_si512(x + off); }, acc);
    } else {
      quad_sums<kTaps>(
        r.taps, r.offset, weight, bias,
        [x, step](ptrdiff_t off) {
          const uint8_t* at = x + off;
          if constexpr (W == 32) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at));
            const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + step));
            return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
          }
          __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)));
          v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + step)), 1);
          v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 2 * step)), 2);
          return _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 3 * step)), 3);
        },
        acc);
    }
    if (r.out_f32 != nullptr) {
      // Lane L of the transposed floats: W = 32: pixel L / 2, channels 16 (L mod 2) on; W = 16:
      // pixel L.
      __m512 v[4];
      quad_floats(acc, scale, v);
      float* of = r.out_f32 + p * c + ch;
      for (size_t lane = 0; lane < 4; ++lane) {
        _mm512_storeu_ps(of + (W == 32 ? (lane / 2) * c + 16 * (lane % 2) : lane * c), v[lane]);
      }
      continue;
    }
    const __m512i v = quad_codes(acc, scale, rq);
    uint8_t* out = r.out + p * c + ch;
    if (contiguous) {
      _mm512_storeu_si512(out, v);
    } else if constexpr (W == 32) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_castsi512_si256(v));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), _mm512_extracti64x4_epi64(v, 1));
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_castsi512_si128(v));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), _mm512_extracti32x4_epi32(v, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * c), _mm512_extracti32x4_epi32(v, 2));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 3 * c), _mm512_extracti32x4_epi32(v, 3));
    }
  }
}

template <size_t kTaps>
void run_quads(const S8DepthwiseRun& r) {
  const Requant rq{_mm512_set1_epi32(r.y_zero_point), _mm512_set1_ps(r.lo), _mm512_set1_ps(r.hi)};
  const S8DepthwiseQuadBlocks q(r.channels);
  full_blocks<kTaps>(r, rq, q.full);
  // The half and quarter blocks over the pixels that fill their vectors; the last one to three
  // pixels take those channels from the AVX-512 pairs instead.
  const size_t halves = q.half ? r.pixels / 2 * 2 : 0, quarters = q.quarter ? r.pixels / 4 * 4 : 0;
  if (q.half) pixel_groups<kTaps, 32>(r, rq, q.full, q.half_channel(), halves);
  if (q.quarter) pixel_groups<kTaps, 16>(r, rq, q.full + (q.half ? 1 : 0), q.quarter_channel(), quarters);
  for (size_t p = 0; p < r.pixels; ++p) {
    const size_t from = q.half && p >= halves ? q.half_channel() : q.quarter && p >= quarters ? q.quarter_channel() : q.rest_channel();
    if (from < r.channels) s8_depthwise_pixel_avx512(r, r.x + p * r.pixel_step, p, from);
  }
}

}  // namespace

void s8_depthwise_run_avx512vnni(const S8DepthwiseRun& r) {
  if (r.quad_weight == nullptr) {
    for (size_t p = 0; p < r.pixels; ++p) s8_depthwise_pixel_avx512(r, r.x + p * r.pixel_step, p, 0);
    return;
  }
  switch (r.taps) {
    case 9: return run_quads<9>(r);
    case 25: return run_quads<25>(r);
    case 49: return run_quads<49>(r);
    default: return run_quads<0>(r);
  }
}

}  // namespace kiln
