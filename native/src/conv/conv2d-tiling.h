// How a convolution over a batch is cut into work items, shared by forward and backward.
// Chosen from the geometry and batch only (never the thread count), so results are the same
// whatever the number of threads.
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
};

// whole_planes: never cut an image's plane into tiles. For the forward pass's pixel-rows layout
// (small planes, many channels), whose weights are the larger operand: each tile streamed them
// again (ResNet-50's 3x3 256->256 on 14x14 in three tiles, batch 1: 2.08 ms in the whole model,
// 1.80 ms whole), at the price of a column matrix up to 196 x patch floats per slot.
ConvTiling conv_tiling(const Conv2dGeometry& g, size_t batch, bool whole_planes = false);

}  // namespace kiln
