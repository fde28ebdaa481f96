// How the SpMM drivers (sparse.cc, sparse-nm.cc) split Y = W x X over the thread pool: by tiles of
// X's columns (each task runs every row over its columns, so a task's X columns stay in cache) and,
// where there are too few column tiles for the threads (a Linear layer at small batch), by rows as
// well. Internal.
#pragma once
#include <algorithm>
#include <cstddef>

#include "common/threads.h"
#include "kiln/thread-pool.h"

namespace kiln {
namespace spmm_detail {

// Threads for a product of `work` multiply-adds: below kParallelMinWork it stays on the calling
// thread (the pool's hand-off would cost more than it saves).
constexpr size_t kParallelMinWork = size_t{1} << 17;
inline size_t spmm_threads(size_t work, size_t max_threads) {
  return work < kParallelMinWork ? 1 : resolve_threads(max_threads);
}

// Calls run(j0, j1, r0, r1) over columns [0, n) in whole tiles of `tile` columns and rows [0, rows),
// on up to `threads` threads (threads <= 1: one call on this thread).
template <class Run>
void split_columns_and_rows(size_t n, size_t rows, size_t tile, size_t threads, const Run& run) {
  if (threads <= 1) {
    run(size_t{0}, n, size_t{0}, rows);
    return;
  }
  // Column chunks of whole tiles, about 4 per thread for balance; row chunks when columns run out.
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
        const size_t cn = task % chunks_n, cm = task / chunks_n;
        const size_t j0 = cn * tiles_per_chunk * tile;
        const size_t r0 = cm * rows_per_chunk;
        run(j0, std::min(n, j0 + tiles_per_chunk * tile), r0, std::min(rows, r0 + rows_per_chunk));
      },
      threads);
}

}  // namespace spmm_detail
}  // namespace kiln
