#include "conv/winograd.h"

#include <algorithm>

#include "kiln/dispatch.h"
#include "kiln/thread-pool.h"

namespace kiln {
namespace {

constexpr size_t kMaxChannelPairs = 8192;
// Floats of transformed inputs and products (V and M) per band: together about 192 KiB, so that
// a band's 16 GEMMs run from L2 (SeedCNN conv2: the whole 5 x 5 tile grid is one band).
constexpr size_t kBandFloats = size_t{48} << 10;
// Images per run share at most this many scratch slots (one per thread).
constexpr size_t kMaxSlots = 64;

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
         pool.dilation_h == 1 && pool.dilation_w == 1 && pool.out_h >= 1 && pool.out_w >= 1 &&
         2 * pool.out_h <= g.out_height && 2 * pool.out_w <= g.out_width;
}

WinogradConv::WinogradConv(const Conv2dGeometry& g, const float* weight, const float* bias)
    : g_(g), cin_padded_(round16(g.in_channels)), cout_padded_(round16(g.out_channels)) {
  // U = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], in double and rounded once.
  static constexpr double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  u_.assign(16 * g.in_channels * cout_padded_, 0.0f);
  for (size_t o = 0; o < g.out_channels; ++o) {
    for (size_t c = 0; c < g.in_channels; ++c) {
      const float* k = weight + (o * g.in_channels + c) * 9;
      double gk[4][3];  // G g
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 3; ++j) gk[i][j] = G[i][0] * k[j] + G[i][1] * k[3 + j] + G[i][2] * k[6 + j];
      }
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
          const double v = gk[i][0] * G[j][0] + gk[i][1] * G[j][1] + gk[i][2] * G[j][2];
          u_[((i * 4 + j) * g.in_channels + c) * cout_padded_ + o] = static_cast<float>(v);
        }
      }
    }
  }
  bias_.assign(cout_padded_, 0.0f);
  if (bias != nullptr) std::copy(bias, bias + g.out_channels, bias_.begin());
}

bool WinogradConv::available() { return active_isa() >= Isa::kAvx512; }

WinogradArgs WinogradConv::args(const ConvMaxPool* pool, bool relu) const {
  WinogradArgs a;
  a.u = u_.data();
  a.bias = bias_.data();
  a.cin = g_.in_channels;
  a.cin_padded = cin_padded_;
  a.cout = g_.out_channels;
  a.cout_padded = cout_padded_;
  a.in_height = g_.in_height;
  a.in_width = g_.in_width;
  a.pad_top = g_.pad_top;
  a.pad_left = g_.pad_left;
  a.out_height = g_.out_height;
  a.out_width = g_.out_width;
  a.pooled = pool != nullptr;
  a.tiles_h = a.pooled ? pool->out_h : (g_.out_height + 1) / 2;
  a.tiles_w = a.pooled ? pool->out_w : (g_.out_width + 1) / 2;
  a.relu = relu;
  const size_t per_row = 16 * a.tiles_w * (cin_padded_ + cout_padded_);
  a.band_rows = std::max<size_t>(1, std::min(a.tiles_h, kBandFloats / per_row));
  return a;
}

size_t WinogradConv::slots(size_t batch, size_t max_threads) const {
  const size_t threads = max_threads == 0 ? num_threads() : max_threads;
  return std::max<size_t>(1, std::min({threads, batch, kMaxSlots}));
}

size_t WinogradConv::scratch_floats(size_t batch, size_t max_threads, const ConvMaxPool* pool) const {
  return slots(batch, max_threads) * winograd_image_floats(args(pool, false));
}

size_t winograd_image_floats(const WinogradArgs& a) {
  const size_t padded = (2 * a.tiles_h + 2) * (2 * a.tiles_w + 2) * a.cin_padded;
  const size_t band_tiles = a.band_rows * a.tiles_w;
  const size_t staged = a.pooled ? band_tiles * a.cout_padded : 2 * a.band_rows * a.out_width * a.cout_padded;
  // 16 floats of slack after each part: the kernel rounds each part's start up to 64 bytes.
  return padded + 16 * band_tiles * (a.cin_padded + a.cout_padded) + staged + 4 * 16;
}

void WinogradConv::run(const float* input, float* output, size_t batch, const ConvMaxPool* pool, bool relu,
                       float* scratch, size_t max_threads) const {
  const WinogradArgs a = args(pool, relu);
  const size_t per_slot = winograd_image_floats(a);
  const size_t in_image = g_.in_channels * g_.in_plane();
  const size_t out_image = g_.out_channels * (pool != nullptr ? pool->out_h * pool->out_w : g_.out_plane());
  parallel_for_slots(
      batch,
      [&](size_t n, size_t slot) {
        winograd_image_avx512(a, input + n * in_image, output + n * out_image, scratch + slot * per_slot);
      },
      slots(batch, max_threads));
}

}  // namespace kiln
