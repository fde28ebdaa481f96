// The scalar bool family: the fallback of every ISA and the tests' oracle.
#include <cmath>

#include "compare/compare-ukernel.h"

namespace kiln {
namespace {

template <F32CompareKind K>
inline bool compare(float a, float b) {
  if (K == F32CompareKind::kEqual) return a == b;
  if (K == F32CompareKind::kLess) return a < b;
  if (K == F32CompareKind::kLessOrEqual) return a <= b;
  if (K == F32CompareKind::kGreater) return a > b;
  return a >= b;
}

template <F32CompareKind K>
void compare_row(const float* a, size_t sa, const float* b, size_t sb, uint8_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = compare<K>(a[i * sa], b[i * sb]) ? 1 : 0;
}

inline bool classify(F32ClassifyKind kind, float x) {
  switch (kind) {
    case F32ClassifyKind::kIsNaN: return std::isnan(x);
    case F32ClassifyKind::kIsInf: return std::isinf(x);
    case F32ClassifyKind::kIsPosInf: return std::isinf(x) && x > 0;
    case F32ClassifyKind::kIsNegInf: return std::isinf(x) && x < 0;
    case F32ClassifyKind::kNonZero: return x != 0.0f;  // true for NaN
  }
  return false;
}

}  // namespace

void f32_compare_row_scalar(F32CompareKind kind, const float* a, size_t sa, const float* b, size_t sb, uint8_t* y, size_t n) {
  switch (kind) {
    case F32CompareKind::kEqual: compare_row<F32CompareKind::kEqual>(a, sa, b, sb, y, n); break;
    case F32CompareKind::kLess: compare_row<F32CompareKind::kLess>(a, sa, b, sb, y, n); break;
    case F32CompareKind::kLessOrEqual: compare_row<F32CompareKind::kLessOrEqual>(a, sa, b, sb, y, n); break;
    case F32CompareKind::kGreater: compare_row<F32CompareKind::kGreater>(a, sa, b, sb, y, n); break;
    case F32CompareKind::kGreaterOrEqual: compare_row<F32CompareKind::kGreaterOrEqual>(a, sa, b, sb, y, n); break;
  }
}

void f32_classify_scalar(F32ClassifyKind kind, const float* x, uint8_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = classify(kind, x[i]) ? 1 : 0;
}

void f32_where_row_scalar(const uint8_t* c, size_t sc, const float* x, size_t sx, const float* z, size_t sz, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = c[i * sc] != 0 ? x[i * sx] : z[i * sz];
}

}  // namespace kiln
