#include "f32-gemm/f32-gemm-pack.h"

#include <cstring>

#include "kiln/f32-gemm.h"

namespace kiln {

void pack_a_panel(bool trans, const float* a, size_t lda, size_t i0, size_t mr, size_t p0, size_t kc,
                  float* dst) {
  constexpr size_t kMr = kF32GemmMr;
  if (trans) {
    // op(A) columns are contiguous rows of A: each k copies mr neighbours.
    const float* src = a + p0 * lda + i0;
    for (size_t p = 0; p < kc; ++p, src += lda, dst += kMr) {
      size_t i = 0;
      for (; i < mr; ++i) dst[i] = src[i];
      for (; i < kMr; ++i) dst[i] = 0.0f;
    }
    return;
  }
  if (mr == kMr) {
    const float* r0 = a + i0 * lda + p0;
    for (size_t p = 0; p < kc; ++p, dst += kMr) {
      for (size_t i = 0; i < kMr; ++i) dst[i] = r0[i * lda + p];
    }
    return;
  }
  for (size_t p = 0; p < kc; ++p, dst += kMr) {
    size_t i = 0;
    for (; i < mr; ++i) dst[i] = a[(i0 + i) * lda + p0 + p];
    for (; i < kMr; ++i) dst[i] = 0.0f;
  }
}

void pack_b_block(bool trans, const float* b, size_t ldb, size_t p0, size_t kc, size_t j0, size_t nc,
                  float* dst) {
  constexpr size_t kNr = kF32GemmPanelN;
  for (size_t q = 0; q * kNr < nc; ++q) {
    const size_t jq = j0 + q * kNr;
    const size_t width = nc - q * kNr < kNr ? nc - q * kNr : kNr;
    float* panel = dst + q * kc * kNr;
    if (!trans) {
      const float* src = b + p0 * ldb + jq;
      for (size_t p = 0; p < kc; ++p, src += ldb, panel += kNr) {
        std::memcpy(panel, src, width * sizeof(float));
        for (size_t j = width; j < kNr; ++j) panel[j] = 0.0f;
      }
    } else {
      // op(B) rows are columns of B: gather one element from each of the panel's columns.
      const float* src = b + jq * ldb + p0;
      if (width == kNr) {
        for (size_t p = 0; p < kc; ++p, panel += kNr) {
          for (size_t j = 0; j < kNr; ++j) panel[j] = src[j * ldb + p];
        }
      } else {
        for (size_t p = 0; p < kc; ++p, panel += kNr) {
          size_t j = 0;
          for (; j < width; ++j) panel[j] = src[j * ldb + p];
          for (; j < kNr; ++j) panel[j] = 0.0f;
        }
      }
    }
  }
}

}  // namespace kiln
