#include "conv/winograd.h"

#include <algorithm>

#include "common/dispatch.h"
#include "conv/conv-ukernel.h"
#include "kiln/thread-pool.h"

namespace kiln {
namespace {

// F(2x2) kept winning up to 256 x 256 channels (ResNet's 3x3 layers at batch 1, one thread, Zen 5,
// before the GEMM packed B row by row: 128x128 on 28x28 0.84 ms against 1.54 ms for im2col + GEMM,
// 256x256 on 14x14 0.78 against 1.51), its 4 MiB of transformed weights read from L2/L3 once per
// band; at 512 x 512 (16 MiB, ResNet's 7x7 layers) it fell behind (2.99 against 1.93 ms) at batch 1,
// and so did it on the Xeon VM (2.89 against 2.09 ms), but from batch 2 on it won there: ResNet-18's
// 512 x 512 on 7x7, one thread, AVX-512, im2col + GEMM against F(2x2): 4.18 / 3.65 ms at batch 2,
// 7.90 / 5.23 at 4, 15.2 / 10.9 at 8, 29.9 / 19.0 at 16. So past 256 x 256 channels it waits for
// a batch of at least kMinRunTiles tiles (winograd_min_batch).
constexpr size_t kMaxBatch1ChannelPairs = 65536;
constexpr size_t kMaxChannelPairs = 512 * 512;
constexpr size_t kMinRunTiles = 32;
// Floats of transformed inputs and products (V and M) per band: together about 192 KiB, so that
// a band's GEMMs run from L2 (SeedCNN conv2: the whole tile grid is one band).
constexpr size_t kBandFloats = size_t{48} << 10;
// Images per run share at most this many scratch slots (one per thread).
constexpr size_t kMaxSlots = 64;
// Transformed weights past the L2 come from L3 or memory once per band: bands of at least this
// many tiles (whole images, grouped where one has fewer) spread that read over enough work. With
// bands of one tile row (7 tiles for ResNet-50's 256 x 256 layers on 14x14, 4 MiB of F(2x2)
// weights) Winograd lost to im2col + GEMM in the whole model; with these, ResNet-50 ran 8% faster
// at batch 1 and 16, one thread, Zen 5 (43.5 against 46.4 ms, 699 against 751 ms), and GoogLeNet
// 22% (its 3x3 layers of 96-160 -> 128-320 channels on 28x28 and 14x14).
constexpr size_t kMinBandTiles = 96;
constexpr size_t kMaxGroup = 8;
// ... as long as one image brings this many tiles (a 12 x 12 output): on 7x7 (16 tiles) a batch-1
// run would read 3.3 MiB of weights (GoogLeNet's 160 -> 320) for less work than the GEMM's read
// of its 1.8 MiB.
constexpr size_t kMinImageTiles = 36;

size_t round16(size_t n) { return (n + 15) / 16 * 16; }

}  // namespace

bool winograd_fits(const Conv2dGeometry& g) {
  return g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 &&
         g.dilation_w == 1 && g.groups == 1 && g.in_channels >= 8 && g.out_channels >= 16 &&
         g.in_channels * g.out_channels <= kMaxChannelPairs && g.out_height >= 1 && g.out_width >= 1 &&
         g.in_height < (size_t{1} << 16) && g.in_width < (size_t{1} << 16);
}

bool winograd_pool_fits(const Conv2dGeometry& g, const ConvMaxPool& pool) {
  return pool.kernel_h == 2 && pool.kernel_w == 2 && pool.stride_h == 2 && pool.stride_w == 2 &&
         pool.dilation_h == 1 && pool.dilation_w == 1 && pool.pad_top == 0 && pool.pad_left == 0 && pool.out_h >= 1 &&
         pool.out_w >= 1 &&
         2 * pool.out_h <= g.out_height && 2 * pool.out_w <= g.out_width;
}

namespace {

size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

}  // namespace

size_t winograd_min_batch(const Conv2dGeometry& g) {
  const size_t pairs = g.in_channels * g.out_channels;
  const size_t tiles = div_up(g.out_height, 2) * div_up(g.out_width, 2);
  if (pairs <= kMaxBatch1ChannelPairs &&
      (16 * sizeof(float) * pairs <= l2_cache_bytes() || tiles >= kMinImageTiles)) {
    return 1;
  }
  return std::max<size_t>(2, div_up(kMinRunTiles, tiles));
}

size_t winograd_tile_for(const Conv2dGeometry& g, const ConvMaxPool* pool) {
  // F(4x4)'s weights (36 floats per channel pair) must stay in L2 beside a band's transformed
  // inputs: up to about 42% of it (3072 pairs, 432 KiB, on a 1 MiB Zen L2; 6144 pairs on a 2 MiB
  // Xeon L2, where ResNet's 64 x 64 layers on 56x56 took 0.61 ms in F(4x4) against 0.85 in F(2x2)).
  const size_t max_f4_pairs = l2_cache_bytes() * 3 / 1024;
  if (g.in_channels * g.out_channels > max_f4_pairs) return 2;
  const size_t rows = pool != nullptr ? 2 * pool->out_h : g.out_height;
  const size_t cols = pool != nullptr ? 2 * pool->out_w : g.out_width;
  const size_t f2 = 16 * ((rows + 1) / 2) * ((cols + 1) / 2);
  const size_t f4 = 36 * ((rows + 3) / 4) * ((cols + 3) / 4);
  return 4 * f4 <= 3 * f2 ? 4 : 2;
}

namespace {

// U = G g G^T for every channel pair: [(m + 2)^2][Cin][cout_padded], in double and rounded once.
// F(2x2): points 0, 1, -1, infinity; F(4x4): 0, 1, -1, 2, -2, infinity (the G of Lavin & Gray).
AlignedFloats transform_weights(const Conv2dGeometry& g, const float* weight, size_t m, size_t cout_padded) {
  static constexpr double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr double G4[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};
  const size_t n = m + 2;
  auto G = [&](size_t i, size_t j) { return m == 4 ? G4[i][j] : G2[i][j]; };
  AlignedFloats u(n * n * g.in_channels * cout_padded, 0.0f);
  for (size_t o = 0; o < g.out_channels; ++o) {
    for (size_t c = 0; c < g.in_channels; ++c) {
      const float* k = weight + (o * g.in_channels + c) * 9;
      double gk[6][3];  // G g
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < 3; ++j) gk[i][j] = G(i, 0) * k[j] + G(i, 1) * k[3 + j] + G(i, 2) * k[6 + j];
      }
      for (size_t i = 0; i < n; ++i) {
        for (size_t j = 0; j < n; ++j) {
          const double v = gk[i][0] * G(j, 0) + gk[i][1] * G(j, 1) + gk[i][2] * G(j, 2);
          u[((i * n + j) * g.in_channels + c) * cout_padded + o] = static_cast<float>(v);
        }
      }
    }
  }
  return u;
}

}  // namespace

WinogradConv::WinogradConv(const Conv2dGeometry& g, const float* weight, const float* bias, size_t tile)
    : g_(g), m_(tile == 4 ? 4 : 2), cin_padded_(round16(g.in_channels)), cout_padded_(round16(g.out_channels)) {
  u_ = transform_weights(g, weight, m_, cout_padded_);
  if (m_ == 4) u2_ = transform_weights(g, weight, 2, cout_padded_);
  bias_.assign(cout_padded_, 0.0f);
  if (bias != nullptr) std::copy(bias, bias + g.out_channels, bias_.begin());
}

bool WinogradConv::available(const DispatchTable& t) { return t.f32_conv.winograd_image != nullptr; }

WinogradArgs WinogradConv::args(const ConvMaxPool* pool, bool relu, size_t m) const {
  WinogradArgs a;
  a.m = m;
  a.u = m == m_ ? u_.data() : u2_.data();
  a.bias = bias_.data();
  a.cin = g_.in_channels;
  a.cin_padded = cin_padded_;
  a.cout = g_.out_channels;
  a.cout_padded = cout_padded_;
  a.in_height = g_.in_height;
  a.in_width = g_.in_width;
  a.pad_top = g_.pad_top;
  a.pad_left = g_.pad_left;
  a.pooled = pool != nullptr;
  a.out_height = a.pooled ? pool->out_h : g_.out_height;
  a.out_width = a.pooled ? pool->out_w : g_.out_width;
  // Convolution outputs needed: under the pool, its windows only (a last odd row or column is unread).
  const size_t rows = a.pooled ? 2 * pool->out_h : g_.out_height;
  const size_t cols = a.pooled ? 2 * pool->out_w : g_.out_width;
  a.tiles_h = (rows + m - 1) / m;
  a.tiles_w = (cols + m - 1) / m;
  a.relu = relu;
  const size_t per_row = (m + 2) * (m + 2) * a.tiles_w * (cin_padded_ + cout_padded_);
  a.band_rows = std::max<size_t>(1, std::min(a.tiles_h, kBandFloats / per_row));
  if (weights_streamed(m)) {
    a.band_rows = std::max(a.band_rows, std::min(a.tiles_h, div_up(kMinBandTiles, a.tiles_w)));
    // F(4x4) declines images holding a NaN one at a time: it never groups them, nor does the
    // F(2x2) those images fall back to.
    if (m_ == 2 && a.band_rows == a.tiles_h) a.group = std::min(kMaxGroup, div_up(kMinBandTiles, a.tiles_h * a.tiles_w));
  }
  return a;
}

size_t WinogradConv::slots(size_t batch, size_t max_threads) const {
  const size_t threads = max_threads == 0 ? num_threads() : max_threads;
  return std::max<size_t>(1, std::min({threads, batch, kMaxSlots}));
}

bool WinogradConv::weights_streamed(size_t m) const {
  return (m + 2) * (m + 2) * sizeof(float) * g_.in_channels * cout_padded_ > l2_cache_bytes();
}

// Room for the tile in use (a band of a.group images where the weights stream) and, with F(4x4),
// for the F(2x2) run of an image holding a NaN.
size_t WinogradConv::image_floats(const ConvMaxPool* pool) const {
  const size_t f = winograd_image_floats(args(pool, false, m_));
  return m_ == 4 ? std::max(f, winograd_image_floats(args(pool, false, 2))) : f;
}

size_t WinogradConv::scratch_floats(size_t batch, size_t max_threads, const ConvMaxPool* pool) const {
  // run() splits one image over the threads when there are fewer images: a slot per part then.
  const size_t threads = max_threads == 0 ? num_threads() : max_threads;
  const size_t tiles_h = args(pool, false, m_).tiles_h;
  const size_t parts = batch < threads && tiles_h >= 2 ? std::min({threads, tiles_h, kMaxSlots}) : 0;
  return std::max(slots(batch, max_threads), parts) * image_floats(pool);
}

size_t winograd_padded_floats(const WinogradArgs& a) {
  // 16 floats of slack: the kernel rounds the start up to 64 bytes.
  return (a.m * a.tiles_h + 2) * (a.m * a.tiles_w + 2) * a.cin_padded + 16;
}

size_t winograd_band_floats(const WinogradArgs& a) {
  const size_t band_tiles = a.band_rows * a.tiles_w * a.group;
  const size_t rows_per_tile = a.pooled ? a.m / 2 : a.m;  // rows of the written plane per tile row
  const size_t staged = a.band_rows * rows_per_tile * a.out_width * a.cout_padded;
  // 16 floats of slack after each part: the kernel rounds each part's start up to 64 bytes.
  return (a.m + 2) * (a.m + 2) * band_tiles * (a.cin_padded + a.cout_padded) + staged + 3 * 16;
}

size_t winograd_image_floats(const WinogradArgs& a) { return winograd_padded_floats(a) + winograd_band_floats(a); }

bool WinogradConv::run(const DispatchTable& t, const float* input, float* output, size_t batch,
                       const ConvMaxPool* pool, bool relu, float* scratch, size_t max_threads, bool accumulate) const {
  const F32ConvKernels& k = t.f32_conv;
  if (k.winograd_image == nullptr || (accumulate && pool != nullptr)) return false;
  WinogradArgs a = args(pool, relu, m_);
  WinogradArgs a2 = m_ == 4 ? args(pool, relu, 2) : a;
  a.accumulate = a2.accumulate = accumulate;
  const size_t per_slot = image_floats(pool);
  const size_t in_image = g_.in_channels * g_.in_plane();
  const size_t out_image = g_.out_channels * a.out_height * a.out_width;
  const size_t threads = max_threads == 0 ? num_threads() : max_threads;
  if (a.group > 1 && k.winograd_group != nullptr && batch >= threads) {
    // Groups of consecutive images, each group on one thread, at most a.group images and enough
    // groups for every thread.
    const size_t group = std::min(a.group, div_up(batch, std::min(threads, kMaxSlots)));
    parallel_for_slots(
        div_up(batch, group),
        [&](size_t i, size_t slot) {
          const size_t n0 = i * group, count = std::min(group, batch - n0);
          k.winograd_group(a, input + n0 * in_image, in_image, output + n0 * out_image, out_image, count,
                           scratch + slot * per_slot);
        },
        slots(batch, max_threads));
    return true;
  }
  if (batch >= threads || a.tiles_h < 2) {
    parallel_for_slots(
        batch,
        [&](size_t n, size_t slot) {
          const float* x = input + n * in_image;
          float* y = output + n * out_image;
          float* s = scratch + slot * per_slot;
          if (!k.winograd_image(a, x, y, s)) (void)k.winograd_image(a2, x, y, s);
        },
        slots(batch, max_threads));
    return true;
  }
  // Fewer images than threads (batch 1): each image staged once, then its tile rows split over
  // the threads, each with the band buffers of its own slot (slot 0's padded area holds the
  // staged image). Each output row is written by exactly one band, so results do not change.
  const size_t parts = std::min({threads, a.tiles_h, kMaxSlots});
  // Weights past the L2 made the bands whole images: one band per part instead.
  auto band_per_part = [&](WinogradArgs s) {
    if (weights_streamed(s.m)) s.band_rows = std::min(s.band_rows, div_up(s.tiles_h, parts));
    return s;
  };
  const WinogradArgs split = band_per_part(a), split2 = band_per_part(a2);
  for (size_t n = 0; n < batch; ++n) {
    const float* x = input + n * in_image;
    float* y = output + n * out_image;
    // F(4x4) declines an image holding an infinity or NaN: it is staged again for F(2x2).
    const bool staged = k.winograd_stage(split, x, scratch);
    if (!staged) (void)k.winograd_stage(split2, x, scratch);
    const WinogradArgs& use = staged ? split : split2;
    const size_t padded = winograd_padded_floats(use);
    const size_t rows = use.tiles_h;
    parallel_for(
        parts,
        [&](size_t part) {
          // Whole bands per part, so each part's bands match the single-threaded ones.
          const size_t bands = (rows + use.band_rows - 1) / use.band_rows;
          const size_t b0 = bands * part / parts, b1 = bands * (part + 1) / parts;
          const size_t ty0 = b0 * use.band_rows, ty1 = std::min(rows, b1 * use.band_rows);
          if (ty0 < ty1) k.winograd_bands(use, scratch, y, scratch + part * per_slot + padded, ty0, ty1);
        },
        parts);
  }
  return true;
}

}  // namespace kiln
