// The N:M SpMM driver: checks the strides, picks the kernel for (M, N), then splits the work
// over the thread pool by tiles of X's columns (each task runs every row over its columns, so
// its X columns stay in cache) and, when there are too few column tiles for the threads (a
// Linear layer at small batch), by rows as well. Same split as sparse.cc.
#include <algorithm>
#include <stdexcept>

#include "common/dispatch.h"
#include "common/threads.h"
#include "kiln/thread-pool.h"
#include "sparse/sparse-nm-ukernel.h"

namespace kiln {

namespace {
// Below this many multiply-adds a call stays on the calling thread (as sparse.cc).
constexpr size_t kParallelMinWork = size_t{1} << 17;
}  // namespace

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
  size_t threads = resolve_threads(max_threads);
  if (work < kParallelMinWork) threads = 1;
  if (threads <= 1) {
    a.r_begin = 0;
    a.r_end = rows;
    a.n = n;
    fn(a);
    return;
  }
  const size_t tile = kern.pixel_tile;
  const size_t tiles = (n + tile - 1) / tile;
  const size_t col_chunks = std::max<size_t>(1, std::min(tiles, threads * 4));
  const size_t tiles_per_chunk = (tiles + col_chunks - 1) / col_chunks;
  const size_t chunks_n = (tiles + tiles_per_chunk - 1) / tiles_per_chunk;
  const size_t row_chunks = chunks_n >= threads ? 1 : std::min(rows, (threads * 2 + chunks_n - 1) / chunks_n);
  const size_t rows_per_chunk = (rows + row_chunks - 1) / row_chunks;
  const size_t chunks_m = (rows + rows_per_chunk - 1) / rows_per_chunk;
  parallel_for(
      chunks_n * chunks_m,
      [&](size_t task) {
        F32NmSpmmArgs t = a;
        const size_t cn = task % chunks_n, cm = task / chunks_n;
        const size_t j0 = cn * tiles_per_chunk * tile;
        const size_t j1 = std::min(n, j0 + tiles_per_chunk * tile);
        t.r_begin = cm * rows_per_chunk;
        t.r_end = std::min(rows, t.r_begin + rows_per_chunk);
        t.x = x + j0;
        t.y = y + j0;
        t.n = j1 - j0;
        fn(t);
      },
      threads);
}

void spmm_nm_f32(const PackedNmF32& w, size_t n, const float* x, size_t ldx, float* y, size_t ldy,
                 const float* bias, bool relu, size_t max_threads) {
  spmm_nm_f32(dispatch().f32_nm_spmm, w, n, x, ldx, y, ldy, bias, relu, max_threads);
}

}  // namespace kiln
