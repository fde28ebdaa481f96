// The bool family of the plan: float comparisons and classifications that write bool values
// (uint8 0/1, one byte per element), and Where's select. Each kernel handles one contiguous row;
// the steps (runtime/ops/compare.cc) walk the broadcast. An operand stride is 0 (one element
// repeated along the row) or 1 (contiguous), so the broadcast of a scalar or a row needs no copy.
// The dispatch table holds one set per ISA (common/dispatch.h); the scalar ones
// (compare-reference.cc) are the fallback and the oracle the ISA kernels are tested against.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

// Ordered comparisons: a NaN operand gives 0 (false), as numpy and ONNX Runtime do.
enum class F32CompareKind { kEqual, kLess, kLessOrEqual, kGreater, kGreaterOrEqual };

// y[i] = a[i * sa] op b[i * sb] ? 1 : 0 for i < n; sa and sb are 0 or 1.
using F32CompareRowFn = void (*)(F32CompareKind kind, const float* a, size_t sa, const float* b, size_t sb,
                                 uint8_t* y, size_t n);

// kNonZero is Cast to bool (x != 0; NaN is true, -0 false); kIsPosInf / kIsNegInf are IsInf with
// only one sign detected.
enum class F32ClassifyKind { kIsNaN, kIsInf, kIsPosInf, kIsNegInf, kNonZero };

// y[i] = kind(x[i]) ? 1 : 0 for i < n.
using F32ClassifyFn = void (*)(F32ClassifyKind kind, const float* x, uint8_t* y, size_t n);

// y[i] = c[i * sc] != 0 ? x[i * sx] : z[i * sz] for i < n; each stride 0 or 1. y may be x or z
// when that operand's stride is 1.
using F32WhereRowFn = void (*)(const uint8_t* c, size_t sc, const float* x, size_t sx, const float* z, size_t sz,
                               float* y, size_t n);

struct F32CompareKernels {
  F32CompareRowFn compare_row = nullptr;  // never null
  F32ClassifyFn classify = nullptr;       // never null
  F32WhereRowFn where_row = nullptr;      // never null
};

void f32_compare_row_scalar(F32CompareKind kind, const float* a, size_t sa, const float* b, size_t sb, uint8_t* y, size_t n);
void f32_compare_row_avx2(F32CompareKind kind, const float* a, size_t sa, const float* b, size_t sb, uint8_t* y, size_t n);
void f32_compare_row_avx512(F32CompareKind kind, const float* a, size_t sa, const float* b, size_t sb, uint8_t* y, size_t n);

void f32_classify_scalar(F32ClassifyKind kind, const float* x, uint8_t* y, size_t n);
void f32_classify_avx2(F32ClassifyKind kind, const float* x, uint8_t* y, size_t n);
void f32_classify_avx512(F32ClassifyKind kind, const float* x, uint8_t* y, size_t n);

void f32_where_row_scalar(const uint8_t* c, size_t sc, const float* x, size_t sx, const float* z, size_t sz, float* y, size_t n);
void f32_where_row_avx2(const uint8_t* c, size_t sc, const float* x, size_t sx, const float* z, size_t sz, float* y, size_t n);
void f32_where_row_avx512(const uint8_t* c, size_t sc, const float* x, size_t sx, const float* z, size_t sz, float* y, size_t n);

}  // namespace kiln
