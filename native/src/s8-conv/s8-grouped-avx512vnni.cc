// The grouped int8 convolution (s8-grouped.h) on AVX-512 VNNI: one ymm of 8 int32 sums per pixel
// and group, vpdpbusd of the group's broadcast input quads against 8 x 4 weight bytes. Blocks of
// 8 pixels share each weight load; per (group, tap) a block makes 8 pointer loads, quads x (1
// weight load, 8 broadcasts, 8 vpdpbusd).
#include "common/simd.h"

#include <cstring>

#include "s8-conv/s8-grouped.h"

namespace kiln {
namespace {

constexpr int kBlock = 8;

inline __m256i broadcast_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi32(v);
}

// The GEMM path's uint8 epilogue (quant/requantize-avx2.h) on 8 sums: scale, clamp, round half
// to even, add the zero point.
inline void store_u8(__m256i acc, const float* scale, __m256 lo, __m256 hi, __m256i zero_point, uint8_t* out) {
  __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(scale));
  y = _mm256_min_ps(_mm256_max_ps(y, lo), hi);
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(y), zero_point);
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(w, w));
}

template <int P>
void block(const S8GroupedRun& r, size_t p0) {
  const size_t taps = r.taps_per_pixel, quads = r.quads, group_bytes = quads * 4;
  const __m256 lo = _mm256_set1_ps(r.lo), hi = _mm256_set1_ps(r.hi);
  const __m256i zero_point = _mm256_set1_epi32(r.y_zero_point);
  const uint8_t* const* tap_ptrs = r.taps + p0 * taps;
  const int8_t* w = r.weight;
  for (size_t g = 0; g < r.groups; ++g) {
    const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r.bias + g * kS8GroupedWidth));
    __m256i acc[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) acc[p] = bias;
    const size_t channel0 = g * group_bytes;
    for (size_t t = 0; t < taps; ++t) {
      const uint8_t* x[P];
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) x[p] = tap_ptrs[p * taps + t] + channel0;
      for (size_t q = 0; q < quads; ++q, w += kS8GroupedWidth * 4) {
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) acc[p] = _mm256_dpbusd_epi32(acc[p], broadcast_quad(x[p] + 4 * q), wv);
      }
    }
    const float* scale = r.scale + g * kS8GroupedWidth;
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) store_u8(acc[p], scale, lo, hi, zero_point, r.out + (p0 + p) * r.out_stride + g * kS8GroupedWidth);
  }
}

using BlockFn = void (*)(const S8GroupedRun&, size_t);
constexpr BlockFn kBlocks[kBlock] = {block<1>, block<2>, block<3>, block<4>, block<5>, block<6>, block<7>, block<8>};

}  // namespace

void s8_grouped_run_u8_avx512vnni(const S8GroupedRun& r) {
  size_t p = 0;
  for (; p + kBlock <= r.pixels; p += kBlock) block<kBlock>(r, p);
  if (p < r.pixels) kBlocks[r.pixels - p - 1](r, p);
}

}  // namespace kiln
