// QuantizeLinear / DequantizeLinear fused with the NCHW <-> NHWC change of layout. The SIMD rows
// work on contiguous runs (a channel's pixels); a tile of kTile pixels x all channels goes through
// a small buffer, transposed with plain byte moves (channels are few at the graph boundary).
// Pieces of work are fixed by the shape alone, so results never depend on the thread count.
#include <vector>

#include "elementwise/chunks.h"
#include "common/dispatch.h"
#include "kiln/s8-conv.h"
#include "s8-conv/quantize-rows.h"
#include "s8-conv/s8-conv-ukernel.h"

namespace kiln {

namespace {

constexpr size_t kTile = 256;  // pixels per transposed tile

std::vector<uint8_t>& tile_buffer() {
  thread_local std::vector<uint8_t> buffer;
  return buffer;
}

// Runs fn(image, first_pixel, pixels) over every tile of every image, spread over threads.
template <typename Fn>
void for_each_tile(size_t batch, size_t channels, size_t plane, size_t max_threads, Fn fn) {
  const size_t tiles_per_image = (plane + kTile - 1) / kTile;
  const size_t piece = std::max<size_t>(1, kStreamPiece / (kTile * channels));
  for_each_piece(batch * tiles_per_image, piece, max_threads, [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) {
      const size_t b = t / tiles_per_image, p0 = (t % tiles_per_image) * kTile;
      fn(b, p0, std::min(kTile, plane - p0));
    }
  });
}

}  // namespace

void quantize_u8_nchw_to_nhwc(const float* in, uint8_t* out, size_t batch, size_t channels, size_t plane,
                              float scale, uint8_t zero_point, size_t max_threads) {
  QuantizeParams p;
  p.scale = scale;
  p.zero_point = zero_point;
  p.lo = -static_cast<float>(zero_point);
  p.hi = 255.0f - static_cast<float>(zero_point);
  const S8ConvKernels& k = dispatch().s8_conv;
  const U8QuantizeRowFn row = k.quantize_u8_row;
  if (channels == 1 || plane == 1) {  // the layouts coincide
    for_each_piece(batch * channels * plane, kStreamPiece, max_threads,
                   [&](size_t begin, size_t end) { row(in + begin, out + begin, end - begin, p); });
    return;
  }
  for_each_tile(batch, channels, plane, max_threads, [&](size_t b, size_t p0, size_t n) {
    std::vector<uint8_t>& tile = tile_buffer();
    if (tile.size() < kTile * channels) tile.resize(kTile * channels);
    for (size_t c = 0; c < channels; ++c) row(in + (b * channels + c) * plane + p0, tile.data() + c * kTile, n, p);
    // The table's byte transpose: 2-4 channels (an RGB image) have their own loops in it.
    k.transpose_u8(tile.data(), kTile, out + (b * plane + p0) * channels, channels, channels, n);
  });
}

void dequantize_u8_nhwc_to_nchw(const uint8_t* in, float* out, size_t batch, size_t channels, size_t plane,
                                float scale, uint8_t zero_point, size_t max_threads) {
  const S8ConvKernels& k = dispatch().s8_conv;
  const U8DequantizeRowFn row = k.dequantize_u8_row;
  if (channels == 1 || plane == 1) {
    for_each_piece(batch * channels * plane, kStreamPiece, max_threads,
                   [&](size_t begin, size_t end) { row(in + begin, out + begin, end - begin, scale, zero_point); });
    return;
  }
  for_each_tile(batch, channels, plane, max_threads, [&](size_t b, size_t p0, size_t n) {
    std::vector<uint8_t>& tile = tile_buffer();
    if (tile.size() < kTile * channels) tile.resize(kTile * channels);
    k.transpose_u8(in + (b * plane + p0) * channels, channels, tile.data(), kTile, n, channels);
    for (size_t c = 0; c < channels; ++c) {
      row(tile.data() + c * kTile, out + (b * channels + c) * plane + p0, n, scale, zero_point);
    }
  });
}

}  // namespace kiln
