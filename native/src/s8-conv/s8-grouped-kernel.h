// The grouped int8 convolution's kernel (s8-grouped.h), shared by the AVX-512 VNNI and AVX-VNNI
// files: both have vpdpbusd on ymm (EVEX with AVX512VL, VEX with AVX-VNNI). Each file defines
// KILN_GROUPED_TARGET (its functions' target attribute, or nothing) and a `Dot` with
// `static __m256i dpbusd(__m256i acc, __m256i a, __m256i b)`, then includes this header after
// common/simd.h. Internal linkage: one copy per file, compiled with that file's flags.
//
// One ymm of 8 int32 sums per pixel and group; blocks of 8 pixels share each weight load: per
// (group, tap) a block makes 8 pointer loads, then per input quad 1 weight load, 8 broadcasts and
// 8 vpdpbusd.
#pragma once
#include <cstring>

#include "quant/requantize-avx2.h"
#include "s8-conv/s8-grouped.h"

namespace kiln {
namespace {

constexpr int kGroupedBlock = 8;

KILN_GROUPED_TARGET inline __m256i grouped_broadcast_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi32(v);
}

template <class Dot, int P>
KILN_GROUPED_TARGET void grouped_block(const S8GroupedRun& r, size_t p0) {
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
        for (int p = 0; p < P; ++p) acc[p] = Dot::dpbusd(acc[p], grouped_broadcast_quad(x[p] + 4 * q), wv);
      }
    }
    const float* scale = r.scale + g * kS8GroupedWidth;
    const __m256 scale8 = _mm256_loadu_ps(scale);
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
      // The GEMM path's uint8 epilogue on the 8 sums (the bias is in them already).
      const __m128i bytes = avx2_epilogue::requantize8_u8(acc[p], scale8, lo, hi, zero_point);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(r.out + (p0 + p) * r.out_stride + g * kS8GroupedWidth), bytes);
    }
  }
}

template <class Dot>
KILN_GROUPED_TARGET void grouped_run(const S8GroupedRun& r) {
  size_t p = 0;
  for (; p + kGroupedBlock <= r.pixels; p += kGroupedBlock) grouped_block<Dot, kGroupedBlock>(r, p);
  switch (r.pixels - p) {
    case 1: grouped_block<Dot, 1>(r, p); break;
    case 2: grouped_block<Dot, 2>(r, p); break;
    case 3: grouped_block<Dot, 3>(r, p); break;
    case 4: grouped_block<Dot, 4>(r, p); break;
    case 5: grouped_block<Dot, 5>(r, p); break;
    case 6: grouped_block<Dot, 6>(r, p); break;
    case 7: grouped_block<Dot, 7>(r, p); break;
    default: break;
  }
}

}  // namespace
}  // namespace kiln
