#include "conv/conv2d-tiling.h"

#include <algorithm>

namespace kiln {
namespace {

// A column matrix of up to this many floats (768 KiB) stays in L2 next to the GEMM's own packed
// copy; halving it streamed the weights of a 1152-deep convolution twice as often (ResNet-50's
// 3x3/2 128->128: 1.75 ms at 192K, 2.01 ms at 96K; 384K, past the L2, was within this VM's noise on whole models).
constexpr size_t kColumnBudgetFloats = 192 * 1024;
// Fewer GEMM columns than this starve the micro-kernel, whatever the cache says.
constexpr size_t kMinColumns = 64;
// Small planes are batched until a GEMM has about this many columns; past it, batching only adds
// the copy of the output back to each image's planes.
constexpr size_t kTargetColumns = 256;
constexpr size_t kTileAlign = 16;

}  // namespace

ConvTiling conv_tiling(const Conv2dGeometry& g, size_t batch, bool whole_planes) {
  ConvTiling t;
  const size_t plane = g.out_plane();
  const size_t patch = g.patch();
  if (g.is_pointwise()) {
    // The input planes are the column matrix already: one image per item, no scratch.
    t.images_per_chunk = 1;
    t.tile_cols = plane;
  } else {
    const size_t budget_cols = std::max(kMinColumns, kColumnBudgetFloats / std::max<size_t>(patch, 1));
    if (plane <= budget_cols || whole_planes) {
      // Several small images per GEMM keep it busy, but leave enough chunks to share out.
      const size_t fit = budget_cols / plane;
      const size_t share = std::max<size_t>(1, batch / kConvMaxSlots);
      const size_t enough = (kTargetColumns + plane - 1) / plane;
      t.images_per_chunk = std::max<size_t>(1, std::min({fit, share, enough, std::max<size_t>(batch, 1)}));
      t.tile_cols = plane;
    } else {
      // Tiles of equal width: cut at the budget, a 784-pixel plane (ResNet-50's 28x28 layers) left
      // a 16-column tile beside a 768-column one, so two threads split the work 98:2.
      t.images_per_chunk = 1;
      const size_t widest = std::max(kTileAlign, budget_cols / kTileAlign * kTileAlign);
      const size_t tiles = (plane + widest - 1) / widest;
      t.tile_cols = ((plane + tiles - 1) / tiles + kTileAlign - 1) / kTileAlign * kTileAlign;
    }
  }
  t.tiles = (plane + t.tile_cols - 1) / t.tile_cols;
  t.chunks = (batch + t.images_per_chunk - 1) / t.images_per_chunk;
  t.items = t.chunks * t.tiles;
  t.cols = t.images_per_chunk * t.tile_cols;
  t.col_floats = g.is_pointwise() ? 0 : patch * t.cols;
  t.gather_floats = t.images_per_chunk > 1 ? g.out_channels_per_group() * t.cols : 0;
  return t;
}

size_t ConvTiling::tile_begin(size_t tile, size_t plane) const {
  if (!balanced) return std::min(plane, tile * tile_cols);
  const size_t units = (plane + kTileAlign - 1) / kTileAlign;
  return std::min(plane, units * tile / tiles * kTileAlign);
}

ConvTiling balance_tiles(const ConvTiling& t, size_t plane, size_t threads) {
  if (threads <= 1 || t.images_per_chunk != 1 || t.chunks != 1 || t.tiles % threads == 0 || threads > t.items) return t;
  ConvTiling b = t;
  b.tiles = (t.tiles + threads - 1) / threads * threads;
  // Never narrower than one alignment unit: a plane of few units keeps its tiles.
  if (b.tiles * kTileAlign > plane) return t;
  b.items = b.tiles;
  b.balanced = true;
  return b;
}

}  // namespace kiln
