// STUB, replaced by the GEMM work.
#include "common/dispatch.h"
namespace kiln {
void fill_dispatch_scalar(DispatchTable* table) { (void)table; }
void sgemm_naive(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float* a, size_t lda,
                 const float* b, size_t ldb, float beta, float* c, size_t ldc, const GemmEpilogue& ep) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t p = 0; p < k; ++p) s += double(ta ? a[p * lda + i] : a[i * lda + p]) * double(tb ? b[j * ldb + p] : b[p * ldb + j]);
      double v = alpha * s + (beta == 0 ? 0.0 : beta * double(c[i * ldc + j]));
      if (ep.bias_mode == BiasMode::kPerRow) v += ep.bias[i];
      if (ep.bias_mode == BiasMode::kPerColumn) v += ep.bias[j];
      if (ep.relu && v < 0) v = 0;
      c[i * ldc + j] = float(v);
    }
}
}  // namespace kiln
