// Portable N:M SpMM kernel: the fallback on any CPU and the tests' oracle for the metadata
// decoding. One output element at a time, groups in stored order, summed in float.
#include "common/dispatch.h"
#include "sparse/sparse-nm-ukernel.h"

namespace kiln {

void f32_nm_spmm_scalar(const F32NmSpmmArgs& a) {
  const unsigned bits = a.nm_m == 8 ? 3 : 2;
  const size_t groups = a.spatial * a.channel_groups;
  for (size_t r = a.r_begin; r < a.r_end; ++r) {
    float* yr = a.y + r * a.ldy;
    for (size_t j = 0; j < a.n; ++j) {
      float sum = 0.0f;
      const float* v = a.values + r * groups * a.nm_n;
      const uint8_t* meta = a.meta + r * groups * a.meta_bytes;
      for (size_t p = 0; p < a.spatial; ++p) {
        for (size_t cg = 0; cg < a.channel_groups; ++cg, v += a.nm_n, meta += a.meta_bytes) {
          uint32_t word = 0;
          for (size_t b = 0; b < a.meta_bytes; ++b) word |= static_cast<uint32_t>(meta[b]) << (8 * b);
          for (size_t i = 0; i < a.nm_n; ++i) {
            const size_t c = cg * a.nm_m + ((word >> (i * bits)) & (a.nm_m - 1));
            sum += v[i] * a.x[(c * a.spatial + p) * a.ldx + j];
          }
        }
      }
      if (a.bias) sum += a.bias[r];
      if (a.relu && sum < 0.0f) sum = 0.0f;  // NaN stays NaN
      yr[j] = sum;
    }
  }
}

void fill_f32_nm_spmm_scalar(DispatchTable* t) {
  F32NmSpmmKernels& k = t->f32_nm_spmm;
  for (auto& f : k.m4) f = f32_nm_spmm_scalar;
  for (auto& f : k.m8) f = f32_nm_spmm_scalar;
  k.pixel_tile = 16;
}

}  // namespace kiln
