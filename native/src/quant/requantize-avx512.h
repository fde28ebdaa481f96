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
// sums `acc` plus the column offsets, through the output stage OUT. kAddOffset false: a kernel
// whose sums started from the offsets (the VNNI tile), so `acc` holds them already.
template <S8Output OUT, bool kAddOffset = true>
inline void store16(const S8GemmTile& t, size_t row, size_t col, __m512i acc, __mmask16 mask) {
  const __m512i x = kAddOffset ? _mm512_add_epi32(acc, _mm512_loadu_si512(t.offset + col)) : acc;
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

// 64 int32 codes minus the zero point, already at most 255 - zero point (bounded above in float
// before the conversion), to uint8 in order: int16 with saturation, + zero_point (saturating),
// uint8 with saturation, then at least y_min. The packs work per 128-bit lane: dword j of their
// result holds vector j % 4's elements 4 (j / 4) .. 4 (j / 4) + 3, put back in order by one vpermd.
inline __m512i pack_u8x64(const __m512i (&q)[4], __m512i zero_point16, __m512i y_min8) {
  const __m512i w01 = _mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), zero_point16);
  const __m512i w23 = _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), zero_point16);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_max_epu8(_mm512_permutexvar_epi32(order, _mm512_packus_epi16(w01, w23)), y_min8);
}

// Row `row` of a tile 16 V columns wide (V = 2 or 4): V finished vectors through the uint8 output
// stage with the bits of store16, in fewer instructions: only the upper bound is applied in float
// (q <= hi, so q + zero_point <= y_max); int32 -> int16 -> uint8 saturating packs and a byte max
// with y_min take the lower side, and one store replaces V narrowing ones. On a 1x1 convolution of
// 16 input channels the epilogue is most of a tile's work (4 vpdpbusd steps): MobileNetV2 int8 at
// batch 1 took 2.21-2.29 ms against 2.37-2.58 with store16 (VNNI, three interleaved runs).
// kAddOffset as for store16.
template <int V, bool kAddOffset = true>
inline void store_row_u8(const S8GemmTile& t, size_t row, const __m512i (&acc)[V]) {
  static_assert(V == 2 || V == 4, "rows of 32 or 64 columns");
  const __m512 hi = _mm512_set1_ps(t.hi);
  __m512i q[4];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const __m512i x = kAddOffset ? _mm512_add_epi32(acc[v], _mm512_loadu_si512(t.offset + 16 * v)) : acc[v];
    const __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(x), _mm512_loadu_ps(t.scale + 16 * v));
    // hi first: a NaN y stays NaN, converts to INT_MIN and ends at y_min, where store16's clamp
    // (max with lo first, which returns lo for a NaN) sends it too.
    q[v] = _mm512_cvtps_epi32(_mm512_min_ps(hi, y));
  }
  if (V == 2) q[2] = q[0], q[3] = q[1];
  const int y_min = static_cast<int>(t.lo) + t.zero_point;
  const __m512i bytes = pack_u8x64(q, _mm512_set1_epi16(static_cast<int16_t>(t.zero_point)),
                                   _mm512_set1_epi8(static_cast<char>(y_min)));
  uint8_t* c = static_cast<uint8_t*>(t.c) + row * t.ldc;
  if (V == 4) {
    _mm512_storeu_si512(c, bytes);
  } else {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), _mm512_castsi512_si256(bytes));
  }
}

// Mask of the valid lanes of 16-column vector `v` of a tile `nr` columns wide.
inline __mmask16 lanes(size_t nr, int v) {
  const size_t left = nr - static_cast<size_t>(v) * 16;
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// Output vector u (columns [16u, 16u + 16)) of row `row`, under the tile's lane mask.
template <S8Output OUT, bool kAddOffset = true>
inline void store_vector(const S8GemmTile& t, size_t row, size_t u, __m512i acc) {
  store16<OUT, kAddOffset>(t, row, 16 * u, acc, lanes(t.nr, static_cast<int>(u)));
}

}  // namespace avx512_epilogue
}  // namespace
}  // namespace kiln
