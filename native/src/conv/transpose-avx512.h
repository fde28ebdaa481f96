// 16 x 16 float transpose in AVX-512 registers, for the NCHW <-> NHWC moves of the kernels that
// put channels in lanes (direct-conv, winograd). Include only from AVX-512 translation units;
// `static`, so no weak copy of these functions can be linked into a caller built with other flags.
#pragma once
#include "common/simd.h"

#include <cstddef>

namespace kiln {

// r[i] (row i, 16 columns) becomes r[j] = column j.
static inline void transpose16(__m512* r) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // s[4i + j], 128-bit lane l: column 4l + j of rows 4i..4i+3.
  __m512 s[16];
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    s[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    s[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    s[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    s[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 a = _mm512_shuffle_f32x4(s[j], s[4 + j], 0x88), b = _mm512_shuffle_f32x4(s[j], s[4 + j], 0xdd);
    const __m512 c = _mm512_shuffle_f32x4(s[8 + j], s[12 + j], 0x88), d = _mm512_shuffle_f32x4(s[8 + j], s[12 + j], 0xdd);
    r[j] = _mm512_shuffle_f32x4(a, c, 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(a, c, 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(b, d, 0xdd);
  }
}

// NHWC rows (pixel p's channels at nhwc + p * cout_padded) to NCHW planes: out[c * plane_stride + p]
// for the first `channels` channels and pixels [0, pixels), 16 x 16 blocks at a time (strided scalar
// copies cost more than SeedCNN's conv1 itself). plane_stride > pixels writes part of each plane.
// With kAccumulate each output is added to the value already in its plane, then max(0, sum) when
// `relu` (a residual block's sum written over its residual; max(0, NaN) keeps the NaN, as the
// kernels do); without it `relu` is not read.
template <bool kAccumulate = false>
static inline void nhwc_to_nchw_planes(const float* nhwc, size_t pixels, size_t channels, size_t cout_padded, float* out,
                                       size_t plane_stride, bool relu = false) {
  const __m512 zero = _mm512_setzero_ps();
  for (size_t p0 = 0; p0 < pixels; p0 += 16) {
    const size_t np = pixels - p0 < 16 ? pixels - p0 : 16;
    const __mmask16 lanes = static_cast<__mmask16>((1u << np) - 1u);
    for (size_t c0 = 0; c0 < channels; c0 += 16) {
      __m512 r[16];
      for (size_t i = 0; i < 16; ++i) r[i] = i < np ? _mm512_loadu_ps(nhwc + (p0 + i) * cout_padded + c0) : _mm512_setzero_ps();
      transpose16(r);
      const size_t nc = channels - c0 < 16 ? channels - c0 : 16;
      for (size_t c = 0; c < nc; ++c) {
        float* home = out + (c0 + c) * plane_stride + p0;
        __m512 v = r[c];
        if (kAccumulate) {
          v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(lanes, home));
          if (relu) v = _mm512_max_ps(zero, v);
        }
        _mm512_mask_storeu_ps(home, lanes, v);
      }
    }
  }
}

// The reverse: pixels [0, pixels) of the first `channels` NCHW planes (nchw + c * plane_stride + p)
// to NHWC rows of `cout_padded` floats (the channels past `channels` zero).
static inline void nchw_to_nhwc_planes(const float* nchw, size_t plane_stride, size_t pixels, size_t channels,
                                size_t cout_padded, float* nhwc) {
  for (size_t c0 = 0; c0 < cout_padded; c0 += 16) {
    for (size_t p0 = 0; p0 < pixels; p0 += 16) {
      const size_t np = pixels - p0 < 16 ? pixels - p0 : 16;
      const __mmask16 load = static_cast<__mmask16>((1u << np) - 1u);
      __m512 r[16];
      for (size_t i = 0; i < 16; ++i) {
        r[i] = c0 + i < channels ? _mm512_maskz_loadu_ps(load, nchw + (c0 + i) * plane_stride + p0) : _mm512_setzero_ps();
      }
      transpose16(r);
      for (size_t p = 0; p < np; ++p) _mm512_storeu_ps(nhwc + (p0 + p) * cout_padded + c0, r[p]);
    }
  }
}

}  // namespace kiln
