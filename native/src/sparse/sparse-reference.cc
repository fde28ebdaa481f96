// Portable SpMM kernels: the fallback on any CPU and the tests' oracle for the packed layout.
// One output element at a time, its blocks summed in stored order in float.
#include "common/dispatch.h"
#include "sparse/sparse-ukernel.h"

namespace kiln {
namespace {

template <int BR, int BC>
void spmm_scalar(const F32SpmmArgs& a) {
  for (size_t rb = a.rb_begin; rb < a.rb_end; ++rb) {
    for (int r = 0; r < BR; ++r) {
      const size_t row = rb * BR + r;
      if (row >= a.m) break;
      float* yr = a.y + row * a.ldy;
      for (size_t j = 0; j < a.n; ++j) {
        float sum = 0.0f;
        for (uint32_t b = a.row_ptr[rb]; b < a.row_ptr[rb + 1]; ++b) {
          const float* w = a.values + static_cast<size_t>(b) * (BR * BC) + r * BC;
          const float* x = a.x + static_cast<size_t>(a.col[b]) * a.ldx + j;
          for (int c = 0; c < BC; ++c) sum += w[c] * x[c * a.ldx];
        }
        if (a.bias) sum += a.bias[row];
        if (a.relu && sum < 0.0f) sum = 0.0f;  // NaN stays NaN
        yr[j] = sum;
      }
    }
  }
}

}  // namespace

void f32_spmm_1x1_scalar(const F32SpmmArgs& a) { spmm_scalar<1, 1>(a); }
void f32_spmm_1x1_b1x4_scalar(const F32SpmmArgs& a) { spmm_scalar<1, 4>(a); }
void f32_spmm_1x4_scalar(const F32SpmmArgs& a) { spmm_scalar<4, 1>(a); }
void f32_spmm_1x8_scalar(const F32SpmmArgs& a) { spmm_scalar<8, 1>(a); }

void fill_f32_spmm_scalar(DispatchTable* t) {
  F32SpmmKernels& k = t->f32_spmm;
  k.kernel[static_cast<int>(SparsePattern::kUnstructured)] = f32_spmm_1x1_scalar;
  k.kernel[static_cast<int>(SparsePattern::kBlock1x4)] = f32_spmm_1x1_b1x4_scalar;
  k.kernel[static_cast<int>(SparsePattern::kBlock4x1)] = f32_spmm_1x4_scalar;
  k.kernel[static_cast<int>(SparsePattern::kBlock8x1)] = f32_spmm_1x8_scalar;
  k.pixel_tile = 16;
}

}  // namespace kiln
