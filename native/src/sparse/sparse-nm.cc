// The N:M SpMM driver: checks the strides, picks the kernel for (M, N), then splits the work
// over the thread pool as the CSR driver does (spmm-split.h).
#include <algorithm>
#include <stdexcept>

#include "common/dispatch.h"
#include "kiln/thread-pool.h"
#include "sparse/sparse-nm-ukernel.h"
#include "sparse/spmm-split.h"

namespace kiln {

void spmm_nm_f32(const F32NmSpmmKernels& kern, const PackedNmF32& w, size_t n, const float* x, size_t ldx,
                 float* y, size_t ldy, const float* bias, bool relu, size_t max_threads) {
  const size_t rows = w.rows();
  if (rows == 0 || n == 0) return;
  if (ldy < n || (w.depth() > 0 && ldx < n)) throw std::invalid_argument("spmm_nm_f32: ldx and ldy must be >= n");
  F32NmSpmmArgs a;
  a.values = w.values();
  a.meta = w.meta();
  a.meta_bytes = w.meta_bytes();
  a.nm_n = w.n();
  a.nm_m = w.m();
  a.spatial = w.spatial();
  a.channel_groups = w.channel_groups();
  a.k = w.depth();
  a.x = x;
  a.ldx = ldx;
  a.y = y;
  a.ldy = ldy;
  a.bias = bias;
  a.relu = relu;
  // The packer guarantees M in {4, 8} and 1 <= N < M.
  const F32NmSpmmFn fn = w.m() == 8 ? kern.m8[w.n()] : kern.m4[w.n()];

  const size_t work = (w.stored_values() + rows) * n;
  const size_t threads = spmm_detail::spmm_threads(work, max_threads);
  spmm_detail::split_columns_and_rows(n, rows, kern.pixel_tile, threads, [&](size_t j0, size_t j1, size_t r0, size_t r1) {
    F32NmSpmmArgs t = a;
    t.r_begin = r0;
    t.r_end = r1;
    t.x = x + j0;
    t.y = y + j0;
    t.n = j1 - j0;
    fn(t);
  });
}

void spmm_nm_f32(const PackedNmF32& w, size_t n, const float* x, size_t ldx, float* y, size_t ldy,
                 const float* bias, bool relu, size_t max_threads) {
  spmm_nm_f32(dispatch().f32_nm_spmm, w, n, x, ldx, y, ldy, bias, relu, max_threads);
}

}  // namespace kiln
