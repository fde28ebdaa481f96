// Pixel rows (NHWC: pixel p's channels at rows + p * ld) back to planes (NCHW: channel c's at
// out + c * plane_stride), in the baseline build: SSE2 is part of x86-64, so 4 x 4 blocks move
// through registers without run-time dispatch; the AVX-512 table has its own 16 x 16 kernel
// (F32DirectConvKernels::nhwc_to_nchw), which needs whole 16-float rows; rows_to_planes picks
// between the two for the GEMM's pixel-rows output and the float Transpose.
#pragma once
#include <cstddef>

#include "conv/conv-ukernel.h"

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace kiln {
namespace {  // internal linkage: one copy per including translation unit, whatever its flags

// Pixels [0, pixels) of the first `channels` channels, ReLU applied where asked. max(0, v) keeps
// -0 and NaN as the scalar `v < 0 ? 0 : v` does. Channels and pixels past the last 4 x 4 block go
// one by one.
inline void f32_rows_to_planes(const float* rows, size_t pixels, size_t channels, size_t ld, bool relu, float* out,
                               size_t plane_stride) {
  size_t c = 0;
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps();
  for (; c + 4 <= channels; c += 4) {
    size_t p = 0;
    for (; p + 4 <= pixels; p += 4) {
      __m128 r0 = _mm_loadu_ps(rows + p * ld + c), r1 = _mm_loadu_ps(rows + (p + 1) * ld + c);
      __m128 r2 = _mm_loadu_ps(rows + (p + 2) * ld + c), r3 = _mm_loadu_ps(rows + (p + 3) * ld + c);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      if (relu) {
        r0 = _mm_max_ps(zero, r0);
        r1 = _mm_max_ps(zero, r1);
        r2 = _mm_max_ps(zero, r2);
        r3 = _mm_max_ps(zero, r3);
      }
      _mm_storeu_ps(out + c * plane_stride + p, r0);
      _mm_storeu_ps(out + (c + 1) * plane_stride + p, r1);
      _mm_storeu_ps(out + (c + 2) * plane_stride + p, r2);
      _mm_storeu_ps(out + (c + 3) * plane_stride + p, r3);
    }
    for (; p < pixels; ++p) {
      for (size_t j = c; j < c + 4; ++j) {
        const float v = rows[p * ld + j];
        out[j * plane_stride + p] = relu && v < 0 ? 0.0f : v;
      }
    }
  }
#endif
  for (; c < channels; ++c) {
    float* plane = out + c * plane_stride;
    for (size_t p = 0; p < pixels; ++p) {
      const float v = rows[p * ld + c];
      plane[p] = relu && v < 0 ? 0.0f : v;
    }
  }
}

// The same move on table d's 16 x 16 kernel where it has one and the caller allows it to read
// whole rows (`whole_rows`: each row's floats up to the next multiple of 16 past `channels` may be
// read), else on the SSE2 blocks above. No ReLU.
inline void rows_to_planes(const F32DirectConvKernels& d, const float* rows, size_t pixels, size_t channels, size_t ld,
                           bool whole_rows, float* out, size_t plane_stride) {
  if (whole_rows && d.nhwc_to_nchw != nullptr) {
    d.nhwc_to_nchw(rows, pixels, channels, ld, out, plane_stride);
    return;
  }
  f32_rows_to_planes(rows, pixels, channels, ld, false, out, plane_stride);
}

}  // namespace
}  // namespace kiln
