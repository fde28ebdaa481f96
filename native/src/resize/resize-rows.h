// The row kernels of Resize (runtime/ops/resize.cc), per ISA. A resize is separable: each output
// row is a vertical blend of a few input rows (`blend_rows`), then a horizontal gather with
// per-column taps (`taps_row`); nearest takes one input row and one tap (`gather_row`), and the
// nearest 2x upsampling of detection heads and FPNs duplicates each element (`double_row`). The
// index and weight tables are built once per plan step. The dispatch table holds one set per ISA
// (common/dispatch.h); the scalar ones (resize-reference.cc) are the fallback and the oracle.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

// y[j] = x[idx[j]], j < n.
using F32ResizeGatherRowFn = void (*)(const float* x, const int32_t* idx, size_t n, float* y);
// y[2j] = y[2j + 1] = x[j], j < n (y holds 2n floats).
using F32ResizeDoubleRowFn = void (*)(const float* x, size_t n, float* y);
// y[j] = sum over t < taps of x[idx[j * taps + t]] * w[j * taps + t], j < n (taps >= 1: 2 or 4, more
// for an antialiased downscale).
using F32ResizeTapsRowFn = void (*)(const float* x, const int32_t* idx, const float* w, size_t taps, size_t n, float* y);
// y[j] = sum over t < taps of rows[t][j] * w[t], j < n.
using F32ResizeBlendRowsFn = void (*)(const float* const* rows, const float* w, size_t taps, size_t n, float* y);

struct F32ResizeKernels {
  F32ResizeGatherRowFn gather_row = nullptr;  // never null
  F32ResizeDoubleRowFn double_row = nullptr;  // never null
  F32ResizeTapsRowFn taps_row = nullptr;      // never null
  F32ResizeBlendRowsFn blend_rows = nullptr;  // never null
};

void f32_resize_gather_row_scalar(const float* x, const int32_t* idx, size_t n, float* y);
void f32_resize_double_row_scalar(const float* x, size_t n, float* y);
void f32_resize_taps_row_scalar(const float* x, const int32_t* idx, const float* w, size_t taps, size_t n, float* y);
void f32_resize_blend_rows_scalar(const float* const* rows, const float* w, size_t taps, size_t n, float* y);

void f32_resize_gather_row_avx2(const float* x, const int32_t* idx, size_t n, float* y);
void f32_resize_double_row_avx2(const float* x, size_t n, float* y);
void f32_resize_taps_row_avx2(const float* x, const int32_t* idx, const float* w, size_t taps, size_t n, float* y);
void f32_resize_blend_rows_avx2(const float* const* rows, const float* w, size_t taps, size_t n, float* y);

}  // namespace kiln
