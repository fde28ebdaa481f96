// AVX-512 depthwise kernels (conv/depthwise.h). Eight (or four) vectors of outputs per pass share
// each weight broadcast; their independent FMA chains hide the FMA latency. Lengths round up to
// whole vectors: the phase planes (conv/phase-planes.h) carry kPhaseSlack floats of slack for it.
#include "common/simd.h"

#include <vector>

#include "common/f32-vec.h"
#include "conv/depthwise-stride2.h"
#include "conv/depthwise.h"

namespace kiln {

namespace {

// NV vectors of outputs from p: each weight broadcast serves NV FMAs, and the NV chains are
// independent, so a 3x3 pass is bound by loads rather than by the FMA latency.
template <int NV>
__attribute__((always_inline)) inline void taps_block(const float* const* taps, const float* w, size_t ntaps,
                                                      __m512 vb, __m512 vlo, __m512 vhi, size_t p, float* out) {
  __m512 acc[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) acc[v] = vb;
  for (size_t t = 0; t < ntaps; ++t) {
    const __m512 wt = _mm512_set1_ps(w[t]);
    const float* x = taps[t] + p;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[v] = _mm512_fmadd_ps(wt, _mm512_loadu_ps(x + 16 * v), acc[v]);
  }
  // max(bound, v) and min(bound, v) return v when v is NaN.
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + p + 16 * v, _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc[v])));
}

}  // namespace

void f32_depthwise_taps_avx512(const float* const* taps, const float* w, size_t ntaps, float bias, float lo, float hi,
                               size_t n, float* out) {
  const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  size_t p = 0;
  for (; p + 128 <= n; p += 128) taps_block<8>(taps, w, ntaps, vb, vlo, vhi, p, out);
  for (; p + 64 <= n; p += 64) taps_block<4>(taps, w, ntaps, vb, vlo, vhi, p, out);
  for (; p < n; p += 16) taps_block<1>(taps, w, ntaps, vb, vlo, vhi, p, out);
}

namespace {

// x0 shifted down by j lanes, lanes from x1 filling the top (valignd). valignd takes an immediate:
// the switch folds away once the caller's tap loop is unrolled (-O2 and up), and keeps the file
// compiling where it is not (-O1, the sanitizer build).
__attribute__((always_inline)) inline __m512 shift_lanes(__m512 x0, __m512 x1, int j) {
  const __m512i lo = _mm512_castps_si512(x0), hi = _mm512_castps_si512(x1);
  switch (j) {
    case 1: return _mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, 1));
    case 2: return _mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, 2));
    case 3: return _mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, 3));
    case 4: return _mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, 4));
    case 5: return _mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, 5));
    case 6: return _mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, 6));
    default: return x0;  // j == 0 (KW is at most 7)
  }
}

// NV vectors of outputs from p over kh input rows of KW taps: per row NV + 1 loads, the shifted
// operands from valignd. The sum runs over taps in the order (i, j), like the taps kernel.
template <int KW, int NV>
__attribute__((always_inline)) inline void rows_block(const float* base, size_t pitch, size_t kh, const float* w,
                                                      __m512 vb, __m512 vlo, __m512 vhi, size_t p, float* out) {
  __m512 acc[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) acc[v] = vb;
  for (size_t i = 0; i < kh; ++i) {
    const float* row = base + i * pitch + p;
    __m512 x[NV + 1];
#pragma GCC unroll 8
    for (int v = 0; v <= NV; ++v) x[v] = _mm512_loadu_ps(row + 16 * v);
#pragma GCC unroll 8
    for (int j = 0; j < KW; ++j) {
      const __m512 wt = _mm512_set1_ps(w[i * KW + j]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        const __m512 shifted = shift_lanes(x[v], x[v + 1], j);
        acc[v] = _mm512_fmadd_ps(wt, shifted, acc[v]);
      }
    }
  }
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + p + 16 * v, _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc[v])));
}

template <int KW>
void rows_kw(const float* base, size_t pitch, size_t kh, const float* w, float bias, float lo, float hi, size_t n,
             float* out) {
  const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  size_t p = 0;
  for (; p + 64 <= n; p += 64) rows_block<KW, 4>(base, pitch, kh, w, vb, vlo, vhi, p, out);
  for (; p < n; p += 16) rows_block<KW, 1>(base, pitch, kh, w, vb, vlo, vhi, p, out);
}

}  // namespace

void f32_depthwise_rows_avx512(const float* base, size_t pitch, size_t kh, size_t kw, const float* w, float bias,
                               float lo, float hi, size_t n, float* out) {
  switch (kw) {
    case 3: rows_kw<3>(base, pitch, kh, w, bias, lo, hi, n, out); return;
    case 5: rows_kw<5>(base, pitch, kh, w, bias, lo, hi, n, out); return;
    case 7: rows_kw<7>(base, pitch, kh, w, bias, lo, hi, n, out); return;
    default: {
      // Other widths through the taps kernel, on the same offsets.
      const float* on_stack[64] = {};
      std::vector<const float*> on_heap(kh * kw > 64 ? kh * kw : 0);
      const float** taps = kh * kw > 64 ? on_heap.data() : on_stack;
      for (size_t i = 0; i < kh; ++i)
        for (size_t j = 0; j < kw; ++j) taps[i * kw + j] = base + i * pitch + j;
      f32_depthwise_taps_avx512(taps, w, kh * kw, bias, lo, hi, n, out);
    }
  }
}

void f32_depthwise_stride2_rows_avx512(const float* const* rows, size_t odd_offset, size_t kh, size_t kw,
                                       size_t out_rows, const float* w, float bias, float lo, float hi, size_t n,
                                       float* out, size_t out_ld) {
  depthwise_stride2_rows<F32Avx512>(rows, odd_offset, kh, kw, out_rows, w, bias, lo, hi, n, out, out_ld);
}

void f32_deinterleave2_avx512(const float* src, size_t pairs, float* even, float* odd) {
  const __m512i even_lanes = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd_lanes = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  size_t j = 0;
  for (; j + 16 <= pairs; j += 16) {
    const __m512 lo = _mm512_loadu_ps(src + 2 * j), hi = _mm512_loadu_ps(src + 2 * j + 16);
    _mm512_storeu_ps(even + j, _mm512_permutex2var_ps(lo, even_lanes, hi));
    _mm512_storeu_ps(odd + j, _mm512_permutex2var_ps(lo, odd_lanes, hi));
  }
  if (j < pairs) {
    // The last pairs through masks: a scalar loop here cost as much as the vectors on 28-wide rows.
    const size_t left = pairs - j;
    const __mmask16 lo_lanes = left >= 8 ? 0xffff : static_cast<__mmask16>((1u << (2 * left)) - 1);
    const __mmask16 hi_lanes = left > 8 ? static_cast<__mmask16>((1u << (2 * (left - 8))) - 1) : 0;
    const __m512 lo = _mm512_maskz_loadu_ps(lo_lanes, src + 2 * j), hi = _mm512_maskz_loadu_ps(hi_lanes, src + 2 * j + 16);
    const __mmask16 out_lanes = static_cast<__mmask16>((1u << left) - 1);
    _mm512_mask_storeu_ps(even + j, out_lanes, _mm512_permutex2var_ps(lo, even_lanes, hi));
    _mm512_mask_storeu_ps(odd + j, out_lanes, _mm512_permutex2var_ps(lo, odd_lanes, hi));
  }
}

}  // namespace kiln
