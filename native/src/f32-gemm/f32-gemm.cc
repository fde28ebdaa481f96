// STUB, replaced by the GEMM work.
#include "kiln/f32-gemm.h"
namespace kiln {
void sgemm(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float* a, size_t lda, const float* b,
           size_t ldb, float beta, float* c, size_t ldc, const GemmEpilogue& ep, size_t) {
  sgemm_naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep);
}
}  // namespace kiln
