// The int8 epilogues on 8 columns at a time with AVX2 + FMA: the same float32 operations as
// quant/requantize.h, lane by lane, so results match the scalar path bit for bit.
// Only for translation units compiled with AVX2 flags. Internal linkage: see requantize.h.
#pragma once
#include "common/simd.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {
namespace avx2_epilogue {

// The uint8 output stage on 8 finished sums (column offsets added): scale, clamp to [lo, hi]
// (bounds minus the zero point), round half to even, add the zero point. The 8 bytes come back in
// the low half. The grouped int8 convolution (s8-conv/s8-grouped-kernel.h) shares it.
inline __m128i requantize8_u8(__m256i x, __m256 scale, __m256 lo, __m256 hi, __m256i zero_point) {
  __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(x), scale);
  y = _mm256_max_ps(y, lo);
  y = _mm256_min_ps(y, hi);
  // In range after the clamp; cvtps2dq rounds half to even (default MXCSR).
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(y), zero_point);
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  return _mm_packus_epi16(w, w);  // values are 0..255: no saturation happens
}

// Row `row`, columns [col, col + count) of the tile (count <= 8): the finished sums `acc` plus
// the column offsets, through the output stage OUT. Columns past `count` are not written.
template <S8Output OUT>
inline void store8(const S8GemmTile& t, size_t row, size_t col, __m256i acc, size_t count) {
  const __m256i x = _mm256_add_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.offset + col)));
  const size_t at = row * t.ldc + col;
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  if (OUT == S8Output::kInt32) {
    int32_t* c = static_cast<int32_t*>(t.c) + at;
    if (count == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), x);
    } else {
      _mm256_maskstore_epi32(c, mask, x);
    }
  } else if (OUT == S8Output::kU8) {
    const __m128i b = requantize8_u8(x, _mm256_loadu_ps(t.scale + col), _mm256_set1_ps(t.lo), _mm256_set1_ps(t.hi),
                                     _mm256_set1_epi32(t.zero_point));
    uint8_t* c = static_cast<uint8_t*>(t.c) + at;
    if (count == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(c), b);
    } else {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b);
      std::memcpy(c, tmp, count);
    }
  } else {
    const __m256 y = _mm256_fmadd_ps(_mm256_cvtepi32_ps(x), _mm256_loadu_ps(t.scale + col),
                                     _mm256_loadu_ps(t.bias + col));
    float* c = static_cast<float*>(t.c) + at;
    if (count == 8) {
      _mm256_storeu_ps(c, y);
    } else {
      _mm256_maskstore_ps(c, mask, y);
    }
  }
}

// Output vector u (columns [8u, 8u + 8)) of row `row`, clipped to the tile's nr columns: nothing
// past them is written, nothing at all for a vector wholly past them.
template <S8Output OUT>
inline void store_vector(const S8GemmTile& t, size_t row, size_t u, __m256i acc) {
  const size_t col = 8 * u;
  if (u > 0 && t.nr <= col) return;
  const size_t left = t.nr - col;
  store8<OUT>(t, row, col, acc, left < 8 ? left : 8);
}

}  // namespace avx2_epilogue
}  // namespace
}  // namespace kiln
