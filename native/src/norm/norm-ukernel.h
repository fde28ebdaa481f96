// Row kernels of the normalizations (LayerNormalization, GroupNormalization and
// InstanceNormalization), one set per ISA in the dispatch table (common/dispatch.h); the scalar
// ones (norm-reference.cc) are the fallback and the oracle. Every normalization reduces to
// contiguous rows: moments() over a row (a LayerNorm row, a group of C/G planes), then either
// normalize_row() (per-element scale and bias: LayerNorm) or scale_shift_row() (one a, b per
// plane: GroupNorm/InstanceNorm with a = rstd * scale[c], b = bias[c] - mean * a).
#pragma once
#include <cstddef>

namespace kiln {

// mean and population variance of x[0..n) (n >= 1), two passes (the variance sums squared
// deviations from the mean, never E[x^2] - mean^2).
using F32NormMomentsFn = void (*)(const float* x, size_t n, float* mean, float* var);
// y[j] = (x[j] - mean) * rstd * scale[j] + bias[j]; y may equal x.
using F32NormRowFn = void (*)(const float* x, size_t n, float mean, float rstd, const float* scale,
                              const float* bias, float* y);
// y[j] = x[j] * a + b; y may equal x.
using F32ScaleShiftRowFn = void (*)(const float* x, size_t n, float a, float b, float* y);

struct F32NormKernels {
  F32NormMomentsFn moments = nullptr;         // never null
  F32NormRowFn normalize_row = nullptr;       // never null
  F32ScaleShiftRowFn scale_shift_row = nullptr;  // never null
};

void f32_norm_moments_scalar(const float* x, size_t n, float* mean, float* var);
void f32_norm_row_scalar(const float* x, size_t n, float mean, float rstd, const float* scale, const float* bias,
                         float* y);
void f32_scale_shift_row_scalar(const float* x, size_t n, float a, float b, float* y);

void f32_norm_moments_avx2(const float* x, size_t n, float* mean, float* var);
void f32_norm_row_avx2(const float* x, size_t n, float mean, float rstd, const float* scale, const float* bias,
                       float* y);
void f32_scale_shift_row_avx2(const float* x, size_t n, float a, float b, float* y);

void f32_norm_moments_avx512(const float* x, size_t n, float* mean, float* var);
void f32_norm_row_avx512(const float* x, size_t n, float mean, float rstd, const float* scale, const float* bias,
                         float* y);
void f32_scale_shift_row_avx512(const float* x, size_t n, float a, float b, float* y);

}  // namespace kiln
