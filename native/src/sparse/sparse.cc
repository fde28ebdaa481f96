// The SpMM driver: checks the strides, then splits the work over the thread pool (spmm-split.h:
// tiles of X's columns, block-rows as well where columns run out).
#include <algorithm>
#include <stdexcept>

#include "common/dispatch.h"
#include "kiln/thread-pool.h"
#include "sparse/sparse-ukernel.h"
#include "sparse/spmm-split.h"

namespace kiln {

void spmm_f32(const F32SpmmKernels& kern, const PackedSparseF32& w, size_t n, const float* x, size_t ldx,
              float* y, size_t ldy, const float* bias, bool relu, size_t max_threads) {
  const size_t m = w.rows();
  if (m == 0 || n == 0) return;
  if (ldy < n || (w.depth() > 0 && ldx < n)) throw std::invalid_argument("spmm_f32: ldx and ldy must be >= n");
  F32SpmmArgs a;
  a.row_ptr = w.row_ptr();
  a.col = w.col();
  a.values = w.values();
  a.k = w.depth();
  a.used_k = w.used_k();
  a.used_k_count = w.used_k_count();
  a.m = m;
  a.x = x;
  a.ldx = ldx;
  a.y = y;
  a.ldy = ldy;
  a.bias = bias;
  a.relu = relu;
  const F32SpmmFn fn = kern.kernel[static_cast<int>(w.pattern())];

  const size_t work = (w.stored_values() + m) * n;
  const size_t threads = spmm_detail::spmm_threads(work, max_threads);
  spmm_detail::split_columns_and_rows(n, w.block_rows(), kern.pixel_tile, threads, [&](size_t j0, size_t j1, size_t r0, size_t r1) {
    F32SpmmArgs t = a;
    t.rb_begin = r0;
    t.rb_end = r1;
    t.x = x + j0;
    t.y = y + j0;
    t.n = j1 - j0;
    fn(t);
  });
}

void spmm_f32(const PackedSparseF32& w, size_t n, const float* x, size_t ldx, float* y, size_t ldy,
              const float* bias, bool relu, size_t max_threads) {
  spmm_f32(dispatch().f32_spmm, w, n, x, ldx, y, ldy, bias, relu, max_threads);
}

}  // namespace kiln
