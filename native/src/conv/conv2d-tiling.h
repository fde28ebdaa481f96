// How a convolution over a batch is cut into work items, shared by forward and backward.
// Chosen from the geometry and batch only (never the thread count), so results are the same
// whatever the number of threads; the forward pass may re-cut a plane's columns for the threads
// (balance_tiles), which moves no output to another sum.
#pragma once
#include <cstddef>

#include "kiln/conv.h"

namespace kiln {

// Items are spread over at most this many slots, each with one set of scratch buffers: in the
// forward pass a slot per thread running items, in the backward pass fixed ranges of chunks, each
// with its own partial weight gradient. Bounds scratch memory to kConvMaxSlots column buffers.
constexpr size_t kConvMaxSlots = 8;

struct ConvTiling {
  size_t images_per_chunk = 1;  // whole images whose columns sit side by side in one GEMM
  size_t chunks = 0;            // ceil(batch / images_per_chunk)
  size_t tile_cols = 0;         // output positions of one image per item (a tile of the plane)
  size_t tiles = 1;             // tiles per image (> 1 only when images_per_chunk == 1)
  size_t items = 0;             // chunks * tiles
  size_t cols = 0;              // GEMM columns of one item: images_per_chunk * tile_cols
  size_t col_floats = 0;        // one column matrix: patch x cols (0 for pointwise convolutions)
  size_t gather_floats = 0;     // Cout/groups x cols when several images share a GEMM, else 0
  bool balanced = false;        // tiles of 16-column units as even as they go (balance_tiles)

  // Output positions [tile_begin(k, plane), tile_begin(k + 1, plane)) of an image are tile k's.
  size_t tile_begin(size_t tile, size_t plane) const;
};

// whole_planes: never cut an image's plane into tiles. For the forward pass's pixel-rows layout
// (small planes, many channels), whose weights are the larger operand: each tile streamed them
// again (ResNet-50's 3x3 256->256 on 14x14 in three tiles, batch 1: 2.08 ms in the whole model,
// 1.80 ms whole), at the price of a column matrix up to 196 x patch floats per slot.
ConvTiling conv_tiling(const Conv2dGeometry& g, size_t batch, bool whole_planes = false);

// The forward pass's items for `threads` threads: where an image's tiles are the only items and
// too few to share out evenly (ResNet-50's 3x3/2 128->128 on 28x28 at batch 1: five tiles, three
// of them on one of two threads), the plane is cut into a multiple of the threads instead, each
// tile no wider than t's (so t's scratch holds it), as long as there are no more threads than t's
// items (t's scratch has that many slots). The sums, and so the bits, do not change.
ConvTiling balance_tiles(const ConvTiling& t, size_t plane, size_t threads);

}  // namespace kiln
