// The int8 epilogues on 16 columns at a time with AVX-512 (F, BW, VL): the same float32
// operations as quant/requantize.h, lane by lane, so results match the scalar path bit for bit.
// Only for translation units compiled with AVX-512 flags. Internal linkage: see requantize.h.
#pragma once
#include "common/simd.h"

#include <cstddef>
#include <cstdint>

#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {
namespace avx512_epilogue {

// Row `row`, columns [col, col + 16) of the tile (lanes outside `mask` untouched): the finished
// sums `acc` plus the column offsets, through the output stage OUT.
template <S8Output OUT>
inline void store16(const S8GemmTile& t, size_t row, size_t col, __m512i acc, __mmask16 mask) {
  const __m512i x = _mm512_add_epi32(acc, _mm512_loadu_si512(t.offset + col));
  const size_t at = row * t.ldc + col;
  if (OUT == S8Output::kInt32) {
    _mm512_mask_storeu_epi32(static_cast<int32_t*>(t.c) + at, mask, x);
  } else if (OUT == S8Output::kU8) {
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(x), _mm512_loadu_ps(t.scale + col));
    y = _mm512_max_ps(y, _mm512_set1_ps(t.lo));
    y = _mm512_min_ps(y, _mm512_set1_ps(t.hi));
    // In range after the clamp; cvtps2dq rounds half to even (default MXCSR).
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(y), _mm512_set1_epi32(t.zero_point));
    _mm_mask_storeu_epi8(static_cast<uint8_t*>(t.c) + at, mask, _mm512_cvtepi32_epi8(q));
  } else {
    const __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(x), _mm512_loadu_ps(t.scale + col),
                                     _mm512_loadu_ps(t.bias + col));
    _mm512_mask_storeu_ps(static_cast<float*>(t.c) + at, mask, y);
  }
}

// Mask of the valid lanes of 16-column vector `v` of a tile `nr` columns wide.
inline __mmask16 lanes(size_t nr, int v) {
  const size_t left = nr - static_cast<size_t>(v) * 16;
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// Output vector u (columns [16u, 16u + 16)) of row `row`, under the tile's lane mask.
template <S8Output OUT>
inline void store_vector(const S8GemmTile& t, size_t row, size_t u, __m512i acc) {
  store16<OUT>(t, row, 16 * u, acc, lanes(t.nr, static_cast<int>(u)));
}

}  // namespace avx512_epilogue
}  // namespace
}  // namespace kiln
