// 16 x 16 float transpose in AVX-512 registers, for the NCHW <-> NHWC moves of the kernels that
// put channels in lanes (direct-conv, winograd). Include only from AVX-512 translation units.
#pragma once
#include <immintrin.h>

namespace kiln {

// r[i] (row i, 16 columns) becomes r[j] = column j.
inline void transpose16(__m512* r) {
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

}  // namespace kiln
