// The depthwise stride-2 rows kernel (conv-ukernel.h's F32DepthwiseKernels::stride2_rows), written
// once over a vector type V (common/f32-vec.h's F32Avx2 or F32Avx512) and included by the AVX2 and
// AVX-512 files, which compile it with their own flags.
#pragma once
#include <cstddef>

namespace kiln {
namespace {

// NV vectors of outputs from q, on each of R output rows. Output row r's kernel row i is the phase
// pair at rows[r * kh + i]: tap j reads the even phase (j even) or the odd one (j odd), j / 2
// floats on, so every tap is one unaligned load. The R * NV accumulators are independent chains:
// with one row of two vectors (28-wide outputs) the chain of nine FMAs per vector set the pace.
template <class V, int KW, int NV, int R>
__attribute__((always_inline)) inline void stride2_block(const float* const* rows, size_t odd_offset, size_t kh,
                                                         const float* w, typename V::Vec vb, typename V::Vec vlo,
                                                         typename V::Vec vhi, size_t q, size_t n, float* out,
                                                         size_t out_ld) {
  constexpr size_t L = V::kLanes;
  typename V::Vec acc[R][NV];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = vb;
  for (size_t i = 0; i < kh; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < KW; ++j) {
      const typename V::Vec wt = V::set1(w[i * KW + j]);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const float* x = rows[r * kh + i] + (j % 2 == 0 ? 0 : odd_offset) + q + j / 2;
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fmadd(wt, V::loadu(x + L * v), acc[r][v]);
      }
    }
  }
  // max(bound, v) and min(bound, v) return v when v is NaN.
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const typename V::Vec y = V::min(vhi, V::max(vlo, acc[r][v]));
      const size_t p = q + L * v;
      if (p + L <= n) {
        V::storeu(out + r * out_ld + p, y);
      } else {
        V::store_tail(out + r * out_ld + p, V::first_lanes(n - p), y);
      }
    }
}

// One or two output rows of n outputs: blocks of four vectors, then the rest as one block of
// one to four (the last vector partial).
template <class V, int KW, int R>
void stride2_rows_of(const float* const* rows, size_t odd_offset, size_t kh, const float* w, float bias, float lo,
                     float hi, size_t n, float* out, size_t out_ld) {
  constexpr size_t L = V::kLanes;
  const typename V::Vec vb = V::set1(bias), vlo = V::set1(lo), vhi = V::set1(hi);
  size_t q = 0;
  for (; q + 4 * L <= n; q += 4 * L) stride2_block<V, KW, 4, R>(rows, odd_offset, kh, w, vb, vlo, vhi, q, n, out, out_ld);
  const size_t left = n - q;
  if (left > 3 * L) {
    stride2_block<V, KW, 4, R>(rows, odd_offset, kh, w, vb, vlo, vhi, q, n, out, out_ld);
  } else if (left > 2 * L) {
    stride2_block<V, KW, 3, R>(rows, odd_offset, kh, w, vb, vlo, vhi, q, n, out, out_ld);
  } else if (left > L) {
    stride2_block<V, KW, 2, R>(rows, odd_offset, kh, w, vb, vlo, vhi, q, n, out, out_ld);
  } else if (left > 0) {
    stride2_block<V, KW, 1, R>(rows, odd_offset, kh, w, vb, vlo, vhi, q, n, out, out_ld);
  }
}

template <class V, int KW>
void stride2_rows_kw(const float* const* rows, size_t odd_offset, size_t kh, size_t out_rows, const float* w,
                     float bias, float lo, float hi, size_t n, float* out, size_t out_ld) {
  if (out_rows == 2) {
    stride2_rows_of<V, KW, 2>(rows, odd_offset, kh, w, bias, lo, hi, n, out, out_ld);
  } else {
    stride2_rows_of<V, KW, 1>(rows, odd_offset, kh, w, bias, lo, hi, n, out, out_ld);
  }
}

template <class V>
void depthwise_stride2_rows(const float* const* rows, size_t odd_offset, size_t kh, size_t kw, size_t out_rows,
                            const float* w, float bias, float lo, float hi, size_t n, float* out, size_t out_ld) {
  switch (kw) {
    case 3: stride2_rows_kw<V, 3>(rows, odd_offset, kh, out_rows, w, bias, lo, hi, n, out, out_ld); return;
    case 5: stride2_rows_kw<V, 5>(rows, odd_offset, kh, out_rows, w, bias, lo, hi, n, out, out_ld); return;
    case 7: stride2_rows_kw<V, 7>(rows, odd_offset, kh, out_rows, w, bias, lo, hi, n, out, out_ld); return;
    default: return;  // depthwise_forward takes this path for these widths only
  }
}

}  // namespace
}  // namespace kiln
