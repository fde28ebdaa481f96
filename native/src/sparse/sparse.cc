// The SpMM driver: checks the strides, then splits the work over the thread pool, by tiles of X's
// columns (each task runs every block-row over its columns, so a task's X columns stay in cache)
// and, where there are too few column tiles for the threads (a Linear layer at small batch), by
// block-rows as well.
#include <algorithm>
#include <stdexcept>

#include "common/dispatch.h"
#include "common/threads.h"
#include "kiln/thread-pool.h"
#include "sparse/sparse-ukernel.h"

namespace kiln {

namespace {
// Below this many multiply-adds a call stays on the calling thread.
constexpr size_t kParallelMinWork = size_t{1} << 17;
}  // namespace

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
  const size_t block_rows = w.block_rows();

  const size_t work = (w.stored_values() + m) * n;
  size_t threads = resolve_threads(max_threads);
  if (work < kParallelMinWork) threads = 1;
  if (threads <= 1) {
    a.rb_begin = 0;
    a.rb_end = block_rows;
    a.n = n;
    fn(a);
    return;
  }
  // Column chunks of whole tiles, about 4 per thread for balance; row chunks when columns run out.
  const size_t tile = kern.pixel_tile;
  const size_t tiles = (n + tile - 1) / tile;
  const size_t col_chunks = std::max<size_t>(1, std::min(tiles, threads * 4));
  const size_t tiles_per_chunk = (tiles + col_chunks - 1) / col_chunks;
  const size_t chunks_n = (tiles + tiles_per_chunk - 1) / tiles_per_chunk;
  const size_t row_chunks = chunks_n >= threads ? 1 : std::min(block_rows, (threads * 2 + chunks_n - 1) / chunks_n);
  const size_t rows_per_chunk = (block_rows + row_chunks - 1) / row_chunks;
  const size_t chunks_m = (block_rows + rows_per_chunk - 1) / rows_per_chunk;
  parallel_for(
      chunks_n * chunks_m,
      [&](size_t task) {
        F32SpmmArgs t = a;
        const size_t cn = task % chunks_n, cm = task / chunks_n;
        const size_t j0 = cn * tiles_per_chunk * tile;
        const size_t j1 = std::min(n, j0 + tiles_per_chunk * tile);
        t.rb_begin = cm * rows_per_chunk;
        t.rb_end = std::min(block_rows, t.rb_begin + rows_per_chunk);
        t.x = x + j0;
        t.y = y + j0;
        t.n = j1 - j0;
        fn(t);
      },
      threads);
}

void spmm_f32(const PackedSparseF32& w, size_t n, const float* x, size_t ldx, float* y, size_t ldy,
              const float* bias, bool relu, size_t max_threads) {
  spmm_f32(dispatch().f32_spmm, w, n, x, ldx, y, ldy, bias, relu, max_threads);
}

}  // namespace kiln
