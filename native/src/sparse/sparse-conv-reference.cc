// Portable direct sparse convolution kernels: the fallback on any CPU and the tests' oracle for the
// packed layout. One output at a time, its blocks summed in stored order in float from the bias.
#include "common/dispatch.h"
#include "sparse/sparse-conv-ukernel.h"

namespace kiln {
namespace {

template <int BR>
void conv_scalar(const F32SparseConvArgs& a) {
  for (size_t g = a.g_begin; g < a.g_end; ++g) {
    for (int r = 0; r < BR; ++r) {
      float* y = a.y + ((g - a.g_begin) * BR + r) * a.ldy;
      for (size_t p = 0; p < a.n; ++p) {
        float sum = a.bias[g * BR + r];
        for (uint32_t b = a.group_ptr[g]; b < a.group_ptr[g + 1]; ++b) {
          sum += a.values[static_cast<size_t>(b) * BR + r] * a.x[a.offset[b] + p];
        }
        if (a.relu && sum < 0.0f) sum = 0.0f;  // NaN stays NaN
        y[p] = sum;
      }
    }
  }
}

}  // namespace

void f32_sparse_conv_max_pool_scalar(const F32SparseConvPoolArgs& a) {
  for (size_t c = 0; c < a.channels; ++c) {
    const float* plane = a.x + c * a.ldx;
    float* out = a.y + c * a.ldy;
    for (size_t py = 0; py < a.out_h; ++py) {
      for (size_t px = 0; px < a.out_w; ++px) {
        const float* win = plane + py * a.stride_h * a.pitch + px * a.stride_w;
        float best = win[0];
        for (size_t kh = 0; kh < a.kernel_h; ++kh) {
          for (size_t kw = 0; kw < a.kernel_w; ++kw) {
            const float v = win[kh * a.dilation_h * a.pitch + kw * a.dilation_w];
            if (v > best) best = v;
          }
        }
        out[py * a.out_w + px] = best;
      }
    }
  }
}

void f32_sparse_conv_1_scalar(const F32SparseConvArgs& a) { conv_scalar<1>(a); }
void f32_sparse_conv_4_scalar(const F32SparseConvArgs& a) { conv_scalar<4>(a); }
void f32_sparse_conv_8_scalar(const F32SparseConvArgs& a) { conv_scalar<8>(a); }

void fill_f32_sparse_conv_scalar(DispatchTable* t) {
  F32SparseConvKernels& k = t->f32_sparse_conv;
  k.kernel[0] = f32_sparse_conv_1_scalar;
  k.kernel[1] = f32_sparse_conv_4_scalar;
  k.kernel[2] = f32_sparse_conv_8_scalar;
  k.max_pool = f32_sparse_conv_max_pool_scalar;
}

}  // namespace kiln
