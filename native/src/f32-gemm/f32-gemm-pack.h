// Packing op(A) and op(B) into the shared panel layout of the micro-kernels (see kiln/f32-gemm.h).
#pragma once
#include <cstddef>

namespace kiln {

// Rows [i0, i0 + mr) (mr <= kF32GemmMr) and depth [p0, p0 + kc) of op(A) into one panel:
// dst[p * kF32GemmMr + i]; rows mr..kF32GemmMr-1 are zero. op(A)(i, p) = trans ? a[p*lda + i] : a[i*lda + p].
void pack_a_panel(bool trans, const float* a, size_t lda, size_t i0, size_t mr, size_t p0, size_t kc,
                  float* dst);

// Depth [p0, p0 + kc) and columns [j0, j0 + nc) of op(B) into ceil(nc / kF32GemmPanelN) panels:
// dst[(q * kc + p) * kF32GemmPanelN + j]; columns past nc in the last panel are zero.
// op(B)(p, j) = trans ? b[j*ldb + p] : b[p*ldb + j].
void pack_b_block(bool trans, const float* b, size_t ldb, size_t p0, size_t kc, size_t j0, size_t nc,
                  float* dst);

}  // namespace kiln
