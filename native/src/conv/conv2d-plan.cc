// Forward convolution: im2col (skipped for pointwise) + GEMM with packed weights, bias and ReLU
// fused into the GEMM's epilogue; or, on AVX-512 for unpadded convolutions, the direct kernel
// (conv/direct-conv.h) one image at a time through a cache-resident NHWC buffer, or for a small
// patch (conv/small-conv.h) one image at a time straight into the NCHW output.
#include <algorithm>
#include <cstring>
#include <limits>

#include "common/dispatch.h"
#include "common/threads.h"
#include "conv/conv-ukernel.h"
#include "conv/conv2d-tiling.h"
#include "conv/depthwise.h"
#include "conv/direct-conv.h"
#include "conv/im2col.h"
#include "conv/phase-planes.h"
#include "conv/rows-to-planes.h"
#include "conv/scratch.h"
#include "conv/small-conv.h"
#include "kiln/conv.h"
#include "kiln/pool.h"
#include "kiln/thread-pool.h"

namespace kiln {
namespace {

// Conv2dPlan::run's post function with a residual: adds the residual at the piece's offset in the
// output, then runs the plan's own post function. Every path hands it pieces of the output itself.
struct ResidualAdd {
  const float* output;
  const float* residual;
  const Conv2dPlan::PostOp* then;
  static void apply(const void* ctx, float* values, size_t n) {
    const ResidualAdd& a = *static_cast<const ResidualAdd*>(ctx);
    const float* r = a.residual + (values - a.output);
    for (size_t i = 0; i < n; ++i) values[i] += r[i];
    a.then->apply(values, n);
  }
};

// The residual of images from the `offset`-th output float on (none stays none).
const float* offset_residual(const float* residual, size_t offset) {
  return residual != nullptr ? residual + offset : nullptr;
}

// A stride-2 convolution over a few channels (the 7x7/2 and 3x3/2 stems) as a stride-1 one: each
// input channel split into its four stride phases (padding made real), each phase a channel of
// its own with the matching quarter of the kernel, (K + 1) / 2 square, zero-padded. The direct and
// GEMM paths then see 12 channels and a 4x4 (or 2x2) patch instead of 3 channels strided.
bool phase_split_fits(const Conv2dGeometry& g) {
  return g.groups == 1 && g.stride_h == 2 && g.stride_w == 2 && g.dilation_h == 1 && g.dilation_w == 1 &&
         g.in_channels <= 4 && g.kernel_h >= 3 && g.kernel_w >= 3 && g.out_height > 0 && g.out_width > 0;
}

// A padded stride-2 convolution over more channels (the direct kernel takes its padded copy).
bool padded_stride2_direct_fits(const Conv2dGeometry& g) {
  const bool padded = (g.pad_top | g.pad_bottom | g.pad_left | g.pad_right) != 0;
  return padded && g.groups == 1 && g.stride_h == 2 && g.stride_w == 2 && g.dilation_h == 1 && g.dilation_w == 1 &&
         direct_conv_forward_fits(padding_made_real(g));
}

Conv2dGeometry phase_split_geometry(const Conv2dGeometry& g) {
  Conv2dGeometry p;
  p.in_channels = 4 * g.in_channels;
  p.out_channels = g.out_channels;
  p.kernel_h = (g.kernel_h + 1) / 2;
  p.kernel_w = (g.kernel_w + 1) / 2;
  p.out_height = g.out_height;
  p.out_width = g.out_width;
  p.in_height = g.out_height + p.kernel_h - 1;
  p.in_width = g.out_width + p.kernel_w - 1;
  return p;
}

// Weights of phase channel (c, a, b): w[o][c][2i + a][2j + b], zero past the kernel.
std::vector<float> phase_split_weights(const Conv2dGeometry& g, const Conv2dGeometry& p, const float* w) {
  std::vector<float> out(p.weight_size(), 0.0f);
  for (size_t o = 0; o < g.out_channels; ++o)
    for (size_t c = 0; c < g.in_channels; ++c)
      for (size_t a = 0; a < 2; ++a)
        for (size_t b = 0; b < 2; ++b)
          for (size_t i = 0; i < p.kernel_h; ++i)
            for (size_t j = 0; j < p.kernel_w; ++j) {
              const size_t kh = 2 * i + a, kw = 2 * j + b;
              if (kh >= g.kernel_h || kw >= g.kernel_w) continue;
              out[(((o * p.in_channels) + c * 4 + a * 2 + b) * p.kernel_h + i) * p.kernel_w + j] =
                  w[((o * g.in_channels + c) * g.kernel_h + kh) * g.kernel_w + kw];
            }
  return out;
}

// Late layers have few pixels per image (7x7, 14x14) and many output channels. With the pixels
// as the GEMM's columns (its vector lanes) a 7x7 plane fills one 32-wide tile and half of the
// next; with the pixels as its rows and the output channels in the lanes, every tile is full and
// the weights stream once per image instead of once per 12 channels. The product comes out as
// pixel rows (NHWC) and is transposed into the output planes. Measured on AVX-512, one thread,
// GEMM alone: 2048 x 1024 over 49 pixels 1.75 -> 1.32 ms, 256 x 1024 over 196 pixels 0.67 ->
// 0.62 ms; at 784 pixels the two layouts were even (128 x 1152: 1.60 vs 1.59 ms). Same products,
// same order, same K blocks: the bits equal the columns layout's.
constexpr size_t kRowsMaxPlane = 196;
constexpr size_t kRowsMinChannels = 64;

// For a convolution that runs as GEMMs (not depthwise). A pointwise one reads its input planes in
// place and writes its output planes directly in the columns layout; in rows it pays a transpose
// of its whole output, which pays off only where the plane fills less than 80% of its 32-wide
// column tiles (7x7: 77%; 14x14: 88%). Measured on AVX-512, 1 thread, batch 16 / 1, ms, rows
// against columns: 1x1 256->1024 on 14x14 16.2 / 12.3 and 0.73 / 0.68; 512->2048 on 7x7 13.7 /
// 15.5 and 0.76 / 0.88; 256->256 on 8x8 1.04 / 0.88; on 10x10 (78%) even. A 3x3 keeps rows on
// 14x14 (256->256: 27.1 / 32.0 and 1.68 / 2.05): its column matrix is written anyway. A strided
// 1x1 (a projection shortcut) goes as a pointwise one does: its column matrix is a subsample, and
// in columns it sums onto a residual in place (accumulates()). ResNet-50's 1x1/2 512->1024 onto
// 14x14, in the model (--profile, old and new alternated twice): 30.7 -> 27.3-27.7 ms at batch
// 16, 1.70 -> 1.54-1.64 ms at 1.
bool pixels_in_rows_fits(const Conv2dGeometry& g) {
  const size_t plane = g.out_plane();
  if (plane > kRowsMaxPlane || g.out_channels_per_group() < kRowsMinChannels) return false;
  constexpr size_t kTile = 32;
  return !(g.kernel_h == 1 && g.kernel_w == 1) || plane * 5 < (plane + kTile - 1) / kTile * kTile * 4;
}

// Floats of one row of the pixel-rows product: the output channels of a group, padded to whole
// vectors (the transpose reads whole rows).
size_t rows_ld(size_t m) { return (m + 15) / 16 * 16; }

}  // namespace

Conv2dPlan::Conv2dPlan(const Conv2dGeometry& geometry, const float* weight, const float* bias, bool relu)
    : Conv2dPlan(geometry, weight, bias, relu, false) {}

Conv2dPlan::Conv2dPlan(const Conv2dGeometry& geometry, const float* weight, const float* bias, bool relu,
                       bool strided_inner)
    : g_(geometry), relu_(relu), depthwise_(is_depthwise(geometry)) {
  const size_t m = g_.out_channels_per_group();
  const size_t k = g_.patch();
  if (!strided_inner && phase_split_fits(g_)) {
    const Conv2dGeometry p = phase_split_geometry(g_);
    const std::vector<float> w = phase_split_weights(g_, p, weight);
    phased_ = std::make_shared<Conv2dPlan>(p, w.data(), bias, relu);
    // No slack: an input channel's four phase planes are the stride-1 plan's four channels.
    stem_phases_ = std::make_shared<const PhasePlanes>(planar_window(g_), 0);
    // Where the direct kernel runs, the stem as it is: a stride-2 walk over the padded image.
    const Conv2dGeometry unpadded = padding_made_real(g_);
    if (direct_conv_forward_fits(unpadded)) strided_direct_.reset(new Conv2dPlan(unpadded, weight, bias, relu, true));
    return;
  }
  if (depthwise_) {
    weight_.assign(weight, weight + g_.weight_size());
  } else if (!strided_inner) {
    // An inner plan runs only where the table has the direct kernel: it needs no GEMM weights.
    if (pixels_in_rows_fits(g_)) {
      packed_rows_.reserve(g_.groups);
      for (size_t grp = 0; grp < g_.groups; ++grp) packed_rows_.emplace_back(true, k, m, weight + grp * m * k, k);
    } else {
      packed_.reserve(g_.groups);
      for (size_t grp = 0; grp < g_.groups; ++grp) packed_.emplace_back(false, m, k, weight + grp * m * k, k);
    }
  }
  if (bias != nullptr) bias_.assign(bias, bias + g_.out_channels);
  if (depthwise_ && g_.out_channels_per_group() == 1) {
    blocks8_ = depthwise_block_weights(g_, weight, bias, 8);
    blocks16_ = depthwise_block_weights(g_, weight, bias, 16);
  }
  if (!depthwise_ && direct_conv_forward_fits(g_)) direct_ = std::make_shared<const DirectConvWeights>(g_, weight, bias);
  // A padded stride-2 convolution runs as the stems do where the table has the direct kernel: on
  // a zero-padded copy of each image, with no column matrix. Measured on AVX-512, 1 thread,
  // against im2col + GEMM (ms at batch 1 / 16): ResNet-18's 3x3/2 64->128 on 56x56 0.69 / 13.6 ->
  // 0.51 / 12.2 (the copy aside); DetHead's 16->32 on 112x112 0.22 / 4.2 -> 0.14 / 3.1 and 32->64
  // on 56x56 0.20 / 3.5 -> 0.13 / 2.3. Above the direct kernel's 1024-deep patch (ResNet-50's
  // 128-channel 3x3/2 and up) it stays on im2col.
  if (!depthwise_ && direct_ == nullptr && padded_stride2_direct_fits(g_)) {
    strided_direct_.reset(new Conv2dPlan(padding_made_real(g_), weight, bias, relu, true));
  }
  // Padded small patches run the same kernels on a zero-padded copy of each image (in scratch).
  const Conv2dGeometry unpadded = padding_made_real(g_);
  if (!depthwise_ && small_conv_fits(unpadded)) {
    small_ = std::make_shared<const SmallConvWeights>(unpadded, weight, bias);
    small_padded_ = unpadded.in_height != g_.in_height || unpadded.in_width != g_.in_width;
  }
}

void Conv2dPlan::fuse_post(PostOp op) {
  // The inner plans run the stem's paths themselves, applying the function as they go.
  if (strided_direct_) strided_direct_->fuse_post(op);
  if (phased_) phased_->fuse_post(op);
  post_ = op;
}

bool Conv2dPlan::fuse_clamp(float lo, float hi) {
  if (strided_direct_) strided_direct_->fuse_clamp(lo, hi);
  if (phased_) return phased_->fuse_clamp(lo, hi);
  clamp_lo_ = clamp_ ? std::max(clamp_lo_, lo) : lo;
  clamp_hi_ = clamp_ ? std::min(clamp_hi_, hi) : hi;
  clamp_ = true;
  return true;
}

void Conv2dPlan::clamp_in_place(float* data, size_t n, size_t max_threads) const {
  if (!clamp_) return;
  const float lo = clamp_lo_, hi = clamp_hi_;
  // Pieces of 64K values split over threads: a pass over memory, worth splitting only when large.
  constexpr size_t kPiece = size_t{1} << 16;
  parallel_for(
      (n + kPiece - 1) / kPiece,
      [&](size_t c) {
        float* p = data + c * kPiece;
        const size_t len = std::min(kPiece, n - c * kPiece);
        for (size_t i = 0; i < len; ++i) {
          float v = p[i];
          v = lo > v ? lo : v;  // NaN passes, as in the kernels
          p[i] = hi < v ? hi : v;
        }
      },
      max_threads);
}

bool Conv2dPlan::direct_active(const DispatchTable& t) const {
  return direct_ != nullptr && t.f32_conv.direct.rows != nullptr;
}

bool Conv2dPlan::strided_direct_active(const DispatchTable& t) const {
  return strided_direct_ != nullptr && strided_direct_->direct_active(t);
}

bool Conv2dPlan::phase_split(const DispatchTable& t) const { return phased_ != nullptr && !strided_direct_active(t); }

size_t Conv2dPlan::strided_padded_floats() const {
  if (strided_direct_ == nullptr || (g_.pad_top | g_.pad_bottom | g_.pad_left | g_.pad_right) == 0) return 0;
  return g_.in_channels * strided_direct_->geometry().in_plane();
}

void Conv2dPlan::pad_strided_images(const float* input, size_t n, float* padded) const {
  const Conv2dGeometry& u = strided_direct_->geometry();
  const size_t planes = n * g_.in_channels;
  for (size_t p = 0; p < planes; ++p) {
    // Only the border is zeroed: the rows above and below, then each row's pads either side.
    float* plane = padded + p * u.in_plane();
    std::fill(plane, plane + g_.pad_top * u.in_width, 0.0f);
    std::fill(plane + (g_.pad_top + g_.in_height) * u.in_width, plane + u.in_plane(), 0.0f);
    for (size_t h = 0; h < g_.in_height; ++h) {
      float* row = plane + (h + g_.pad_top) * u.in_width;
      std::fill(row, row + g_.pad_left, 0.0f);
      std::memcpy(row + g_.pad_left, input + p * g_.in_plane() + h * g_.in_width, g_.in_width * sizeof(float));
      std::fill(row + g_.pad_left + g_.in_width, row + u.in_width, 0.0f);
    }
  }
}

bool Conv2dPlan::small_active(const DispatchTable& t) const {
  return small_ != nullptr && t.f32_conv.small_conv_image != nullptr;
}

bool Conv2dPlan::can_fuse_max_pool() const { return can_fuse_max_pool(dispatch()); }

bool Conv2dPlan::can_fuse_max_pool(const DispatchTable& t) const {
  if (post_.fn != nullptr) return false;  // the function runs before the pool: staged
  if (strided_direct_active(t)) return strided_direct_->can_fuse_max_pool(t);
  return phased_ ? phased_->can_fuse_max_pool(t) : direct_active(t) || small_active(t);
}

bool Conv2dPlan::can_fuse_max_pool(const DispatchTable& t, const ConvMaxPool& pool) const {
  if (!can_fuse_max_pool(t)) return false;
  if (pool.interior(g_.out_height, g_.out_width)) return true;
  if (strided_direct_active(t)) return true;
  if (phased_) return phased_->can_fuse_max_pool(t, pool);
  return direct_active(t);  // run_max_pooled takes it over the small-patch kernel, which stages it
}

void Conv2dPlan::split_phases(const DispatchTable& t, const float* input, size_t n, float* phases, float* row) const {
  // Phase (a, b) of input channel c is channel 4c + 2a + b of the stride-1 plan.
  const size_t planes = n * g_.in_channels, per_channel = 4 * stem_phases_->phase_floats();
  for (size_t i = 0; i < planes; ++i) {
    stem_phases_->split_planes(t.f32_conv.depthwise, input + i * g_.in_plane(), 0.0f, phases + i * per_channel, row);
  }
}

size_t Conv2dPlan::direct_slots(size_t batch) {
  return std::min(kConvMaxSlots, std::max(batch, kDirectImageParts));
}

size_t Conv2dPlan::direct_parts(size_t batch, size_t threads) {
  if (batch == 0 || batch >= threads) return 1;
  return std::max<size_t>(1, std::min(threads, direct_slots(batch)) / batch);
}

size_t Conv2dPlan::image_threads(size_t batch, size_t max_threads) const {
  const size_t threads = max_threads == 0 ? num_threads() : max_threads;
  return std::min({threads, batch, kConvMaxSlots});
}

namespace {

// The max_pool2d_forward geometry of `pool` over `planes` output planes of `g`: the separate pool
// of the staged paths.
Pool2dGeometry pool_geometry(const Conv2dGeometry& g, const ConvMaxPool& pool, size_t planes) {
  Pool2dGeometry p;
  p.planes = planes;
  p.in_height = g.out_height;
  p.in_width = g.out_width;
  p.out_height = pool.out_h;
  p.out_width = pool.out_w;
  p.kernel_h = pool.kernel_h;
  p.kernel_w = pool.kernel_w;
  p.stride_h = pool.stride_h;
  p.stride_w = pool.stride_w;
  p.dilation_h = pool.dilation_h;
  p.dilation_w = pool.dilation_w;
  p.pad_top = pool.pad_top;
  p.pad_left = pool.pad_left;
  // The padding after: whatever the last window reaches past the plane (a ceil-mode overhang).
  auto after = [](size_t out, size_t stride, size_t span, size_t pad, size_t in) {
    const size_t reach = (out - 1) * stride + span;
    return reach > pad + in ? reach - pad - in : 0;
  };
  p.pad_bottom = after(pool.out_h, pool.stride_h, pool.dilation_h * (pool.kernel_h - 1) + 1, pool.pad_top, g.out_height);
  p.pad_right = after(pool.out_w, pool.stride_w, pool.dilation_w * (pool.kernel_w - 1) + 1, pool.pad_left, g.out_width);
  return p;
}

}  // namespace

size_t Conv2dPlan::small_padded_floats() const {
  if (!small_padded_) return 0;
  return g_.in_channels * (g_.in_height + g_.pad_top + g_.pad_bottom) * (g_.in_width + g_.pad_left + g_.pad_right);
}

void Conv2dPlan::run_small(const DispatchTable& t, const float* input, float* output, size_t batch,
                           const ConvMaxPool* pool, float* scratch, size_t max_threads, int32_t* indices,
                           const PostOp& post) const {
  const F32ConvKernels& k = t.f32_conv;
  SmallConvArgs args = small_->args();
  args.relu = relu_;
  const size_t in_image = g_.in_channels * g_.in_plane();
  const size_t padded_floats = small_padded_floats();
  const size_t pw = args.in_width, pplane = args.in_height * args.in_width;
  const size_t out_image = g_.out_channels * (pool != nullptr ? pool->out_h * pool->out_w : g_.out_plane());
  // Pools other than 2x2/2 (on AVX2, where the channels-in-lanes kernel does not run): the
  // image's convolution in per-thread scratch, then max_pool2d_forward over it.
  const bool staged = pool != nullptr && !small_conv_pool_fits(g_, *pool);
  const Pool2dGeometry p = staged ? pool_geometry(g_, *pool, g_.out_channels) : Pool2dGeometry();
  // Per slot: the staged convolution image, then the padded input image.
  const size_t staged_floats = staged ? g_.out_channels * g_.out_plane() : 0;
  auto run_image = [&](size_t n, size_t slot) {
    const float* image = input + n * in_image;
    if (padded_floats > 0) {
      float* padded = scratch + slot * (staged_floats + padded_floats) + staged_floats;
      std::fill(padded, padded + padded_floats, 0.0f);
      for (size_t c = 0; c < g_.in_channels; ++c) {
        for (size_t h = 0; h < g_.in_height; ++h) {
          std::memcpy(padded + c * pplane + (h + g_.pad_top) * pw + g_.pad_left, image + (c * g_.in_height + h) * g_.in_width,
                      g_.in_width * sizeof(float));
        }
      }
      image = padded;
    }
    float* out = output + n * out_image;
    if (pool == nullptr) {
      // The clamp and the post function while the image is in cache (a pool's clamp runs on the
      // pooled output, and a post function never meets a pool here: run_max_pooled stages it).
      k.small_conv_image(args, image, out);
      clamp_in_place(out, out_image, 1);
      post.apply(out, out_image);
      return;
    }
    if (staged) {
      float* conv = scratch + slot * (staged_floats + padded_floats);
      k.small_conv_image(args, image, conv);
      max_pool2d_forward(t.f32_pool, p, conv, out, indices != nullptr ? indices + n * out_image : nullptr, 1);
      return;
    }
    int32_t* where = indices != nullptr ? indices + n * out_image : nullptr;
    k.small_conv_max_pool_image(args, image, out, where);
  };
  // A few images per task (about 8 tasks per thread): at ~2.5 us an image, handing out each one
  // alone cost ~8% at 2 threads; fewer, larger tasks leave a late helper too little to take.
  const size_t threads = image_threads(batch, max_threads);
  const size_t per_task = std::max<size_t>(1, batch / (8 * threads));
  parallel_for_slots(
      (batch + per_task - 1) / per_task,
      [&](size_t task, size_t slot) {
        for (size_t n = task * per_task; n < std::min(batch, task * per_task + per_task); ++n) {
          run_image(n, slot);
        }
      },
      threads);
}

namespace {

// NHWC floats run_direct computes before writing them out as NCHW (128 KiB: in L2 with the
// weights' block).
constexpr size_t kDirectBandFloats = size_t{32} << 10;

// How run_direct walks one image under a fused pool: bands of conv rows, each pooled at once
// while it is in cache. Windows that do not overlap vertically (stride >= span, SeedCNN's 2x2/2)
// take one band per pooled row; overlapping ones (3x3/2) take as many pooled rows as fit
// kDirectBandFloats, the rows two bands share carried over rather than computed again. Only the
// columns some window reads are computed (SeedCNN conv2: 10 of the 11 output columns).
struct PoolBands {
  size_t cols_used = 0;    // conv columns [0, cols_used) some window reads
  size_t pooled_rows = 0;  // pooled rows per band
  size_t band_rows = 0;    // conv rows per band, at most
};

PoolBands pool_bands(const ConvMaxPool& pool, size_t conv_width, size_t cout_padded) {
  PoolBands b;
  const size_t span_h = pool.dilation_h * (pool.kernel_h - 1) + 1;
  const size_t span_w = pool.dilation_w * (pool.kernel_w - 1) + 1;
  b.cols_used = std::min(conv_width, (pool.out_w - 1) * pool.stride_w + span_w - pool.pad_left);
  if (pool.stride_h >= span_h) {
    b.pooled_rows = 1;
  } else {
    const size_t fit = std::max(span_h, kDirectBandFloats / (b.cols_used * cout_padded));
    b.pooled_rows = std::min(pool.out_h, (fit - span_h) / pool.stride_h + 1);
  }
  b.band_rows = (b.pooled_rows - 1) * pool.stride_h + span_h;
  return b;
}

}  // namespace

size_t Conv2dPlan::strided_direct_scratch_floats(size_t batch, const ConvMaxPool* pool) const {
  if (strided_direct_ == nullptr) return 0;
  const size_t chunk = std::min(batch, kConvMaxSlots);
  return chunk * strided_padded_floats() +
         (pool != nullptr ? strided_direct_->max_pooled_scratch_floats(chunk, *pool) : strided_direct_->scratch_floats(chunk));
}

size_t Conv2dPlan::max_pooled_scratch_floats(size_t batch, const ConvMaxPool& pool) const {
  // Either path may run: the ISA can change between sizing and running.
  const size_t strided = strided_direct_scratch_floats(batch, &pool);
  if (phased_) {
    const size_t chunk = std::min(batch, kConvMaxSlots);
    const Conv2dGeometry& p = phased_->geometry();
    return std::max(strided, chunk * p.in_channels * p.in_plane() + stem_phases_->row_floats() +
                                 phased_->max_pooled_scratch_floats(chunk, pool));
  }
  const size_t slots = std::min(batch, kConvMaxSlots);
  // run_small stages a pool it does not fuse: one convolution image per slot.
  const size_t small =
      small_ == nullptr ? 0
                        : slots * ((small_conv_pool_fits(g_, pool) ? 0 : g_.out_channels * g_.out_plane()) + small_padded_floats());
  if (direct_ == nullptr || batch == 0) return std::max(small, strided);
  const size_t cp = (g_.out_channels + 15) / 16 * 16;
  const PoolBands b = pool_bands(pool, g_.out_width, cp);
  // The band, the pooled image and its winners (int32, as many).
  return std::max({small, strided, direct_slots(batch) * (b.band_rows * b.cols_used * cp + 2 * pool.out_h * pool.out_w * cp)});
}

void Conv2dPlan::run_max_pooled(const float* input, float* output, size_t batch, const ConvMaxPool& pool,
                                float* scratch, size_t max_threads, int32_t* indices) const {
  run_max_pooled(dispatch(), input, output, batch, pool, scratch, max_threads, indices);
}

void Conv2dPlan::run_max_pooled(const DispatchTable& t, const float* input, float* output, size_t batch,
                                const ConvMaxPool& pool, float* scratch, size_t max_threads, int32_t* indices) const {
  if (batch == 0) return;
  if (post_.fn != nullptr) {
    run_staged_max_pool(t, input, output, batch, pool, max_threads, indices);
    return;
  }
  if (strided_direct_active(t)) {
    run_strided_direct(t, input, output, batch, &pool, scratch, max_threads, indices, nullptr);
    return;  // strided_direct_ took the clamp too (fuse_clamp)
  }
  if (phased_) {
    // Chunks of images: their stride phases, then the stride-1 plan's own fused (or staged) pool.
    const Conv2dGeometry& p = phased_->geometry();
    const size_t chunk = std::min(batch, kConvMaxSlots), phase_image = p.in_channels * p.in_plane();
    const size_t pooled_image = g_.out_channels * pool.out_h * pool.out_w;
    float* phases = scratch;
    float* row = phases + chunk * phase_image;
    for (size_t n0 = 0; n0 < batch; n0 += chunk) {
      const size_t n = std::min(chunk, batch - n0);
      split_phases(t, input + n0 * g_.in_channels * g_.in_plane(), n, phases, row);
      phased_->run_max_pooled(t, phases, output + n0 * pooled_image, n, pool, row + stem_phases_->row_floats(), max_threads,
                              indices != nullptr ? indices + n0 * pooled_image : nullptr);
    }
    return;  // phased_ took the clamp too (fuse_clamp)
  }
  // Every path below is decided on `t`, the one table this call reads: a caller that checked
  // can_fuse_max_pool() on an earlier table (the ISA switched since) gets the staged path, never a
  // kernel `t` lacks.
  // A clamp commutes with the max pool: it runs on the pooled output.
  const size_t pooled = batch * g_.out_channels * pool.out_h * pool.out_w;
  if (small_active(t) && (small_conv_pool_fits(g_, pool) || !direct_active(t))) {
    run_small(t, input, output, batch, &pool, scratch, max_threads, indices, post_);
    clamp_in_place(output, pooled, max_threads);
  } else if (direct_active(t)) {
    run_direct(t, input, output, batch, &pool, scratch, max_threads, indices, post_);
    clamp_in_place(output, pooled, max_threads);
  } else {
    run_staged_max_pool(t, input, output, batch, pool, max_threads, indices);
  }
}

void Conv2dPlan::run_strided_direct(const DispatchTable& t, const float* input, float* output, size_t batch,
                                 const ConvMaxPool* pool, float* scratch, size_t max_threads, int32_t* indices,
                                 const float* residual) const {
  const size_t padded_floats = strided_padded_floats();
  if (padded_floats == 0) {
    if (pool != nullptr) {
      strided_direct_->run_max_pooled(t, input, output, batch, *pool, scratch, max_threads, indices);
    } else {
      strided_direct_->run(t, input, output, batch, scratch, max_threads, residual);
    }
    return;
  }
  // Chunks of images: their zero-padded copies, then the unpadded plan over them.
  const size_t chunk = std::min(batch, kConvMaxSlots);
  const size_t out_image = g_.out_channels * (pool != nullptr ? pool->out_h * pool->out_w : g_.out_plane());
  float* padded = scratch;
  float* inner = padded + chunk * padded_floats;
  for (size_t n0 = 0; n0 < batch; n0 += chunk) {
    const size_t n = std::min(chunk, batch - n0);
    pad_strided_images(input + n0 * g_.in_channels * g_.in_plane(), n, padded);
    if (pool != nullptr) {
      strided_direct_->run_max_pooled(t, padded, output + n0 * out_image, n, *pool, inner, max_threads,
                                   indices != nullptr ? indices + n0 * out_image : nullptr);
    } else {
      strided_direct_->run(t, padded, output + n0 * out_image, n, inner, max_threads, offset_residual(residual, n0 * out_image));
    }
  }
}

void Conv2dPlan::run_staged_max_pool(const DispatchTable& t, const float* input, float* output, size_t batch,
                                     const ConvMaxPool& pool, size_t max_threads, int32_t* indices) const {
  // Chunks of images of at most kStagedChunkFloats of convolution output (at least one image):
  // each output value is summed the same way whatever the batch, so chunking changes no bit.
  constexpr size_t kStagedChunkFloats = size_t{1} << 22;
  const size_t conv_image = g_.out_channels * g_.out_plane();
  const size_t chunk = std::min(batch, std::max<size_t>(1, kStagedChunkFloats / std::max<size_t>(1, conv_image)));
  const size_t in_image = g_.in_channels * g_.in_plane();
  const size_t out_image = g_.out_channels * pool.out_h * pool.out_w;
  ScratchBuffer scratch(chunk * conv_image + scratch_floats(chunk));
  float* conv = scratch.data();
  for (size_t n0 = 0; n0 < batch; n0 += chunk) {
    const size_t n = std::min(chunk, batch - n0);
    run(t, input + n0 * in_image, conv, n, conv + chunk * conv_image, max_threads);
    max_pool2d_forward(t.f32_pool, pool_geometry(g_, pool, n * g_.out_channels), conv, output + n0 * out_image,
                       indices != nullptr ? indices + n0 * out_image : nullptr, max_threads);
  }
}

void Conv2dPlan::run_direct(const DispatchTable& t, const float* input, float* output, size_t batch,
                            const ConvMaxPool* pool, float* scratch, size_t max_threads, int32_t* indices,
                            const PostOp& post) const {
  const F32DirectConvKernels& d = t.f32_conv.direct;
  DirectConvArgs args = direct_->args();
  if (relu_) args.lo = 0.0f;
  // The clamp goes into the kernel's bounds without a pool; with one it runs on the pooled output
  // (run_max_pooled): clamped first, ties at a bound could change which index a window reports.
  if (clamp_ && pool == nullptr) {
    args.lo = std::max(args.lo, clamp_lo_);
    args.hi = clamp_hi_;
  }
  const size_t cp = args.cout_padded;
  const size_t in_image = g_.in_channels * g_.in_plane();
  const PoolBands bands = pool != nullptr ? pool_bands(*pool, g_.out_width, cp) : PoolBands();
  const size_t band_floats = bands.band_rows * bands.cols_used * cp;
  const size_t out_image = g_.out_channels * (pool != nullptr ? pool->out_h * pool->out_w : g_.out_plane());
  const size_t pooled_floats = pool != nullptr ? pool->out_h * pool->out_w * cp : 0;
  const size_t per_slot = pool != nullptr ? band_floats + 2 * pooled_floats : direct_->image_floats();
  // One image per task, scratch per thread: with a slot of strided images per task, the thread
  // that drew one slot more (5 of 8 at 2 threads) or was preempted set the time. Fewer images than
  // threads: each image in parts of whole output (or pooled) rows, one part per task; a part
  // recomputes the convolution rows its pool windows share with the part before it.
  const size_t threads = max_threads == 0 ? num_threads() : max_threads;
  const size_t parts = direct_parts(batch, threads);
  const size_t rows_total = pool != nullptr ? pool->out_h : g_.out_height;
  auto run_part = [&](size_t task, size_t s) {
    const size_t n = task / parts, part = task % parts;
    const size_t ya = rows_total * part / parts, yb = rows_total * (part + 1) / parts;
    if (ya == yb) return;
    float* buffer = scratch + s * per_slot;
    const float* image = input + n * in_image;
    if (pool == nullptr) {
      // Bands of rows small enough to stay in L2 between the kernel and the transpose: a whole
      // ResNet stem image (3.2 MB of NHWC) went out to memory and back.
      const size_t band = std::max<size_t>(1, kDirectBandFloats / (g_.out_width * cp));
      for (size_t oh0 = ya; oh0 < yb; oh0 += band) {
        const size_t oh1 = std::min(yb, oh0 + band);
        d.rows(args, image, oh0, oh1, g_.out_width, buffer);
        float* rows = output + n * out_image + oh0 * g_.out_width;
        d.nhwc_to_nchw(buffer, (oh1 - oh0) * g_.out_width, g_.out_channels, cp, rows, g_.out_plane());
        post.apply(rows, (oh1 - oh0) * g_.out_width, g_.out_channels, g_.out_plane());
      }
      return;
    }
    float* pooled = buffer + band_floats;
    // Winners as int32 in float scratch: only moved as bits (the transpose never does arithmetic).
    int32_t* winners = indices != nullptr ? reinterpret_cast<int32_t*>(pooled + pooled_floats) : nullptr;
    const size_t row_floats = bands.cols_used * cp;
    const size_t span_h = pool->dilation_h * (pool->kernel_h - 1) + 1;
    size_t first = 0, end = 0;  // conv rows [first, end) are in the buffer
    for (size_t y = ya; y < yb; y += bands.pooled_rows) {
      const size_t y1 = std::min(yb, y + bands.pooled_rows);
      // The conv rows the band's windows read, clipped to the output (padding, overhang).
      const size_t top = y * pool->stride_h;
      const size_t r0 = top > pool->pad_top ? top - pool->pad_top : 0;
      const size_t r1 = std::min(g_.out_height, (y1 - 1) * pool->stride_h + span_h - pool->pad_top);
      // Rows the last band ended with and this one starts with move to the front.
      const size_t carried = end > r0 ? end - r0 : 0;
      if (carried > 0) std::memmove(buffer, buffer + (r0 - first) * row_floats, carried * row_floats * sizeof(float));
      d.rows(args, image, r0 + carried, r1, bands.cols_used, buffer + carried * row_floats);
      d.max_pool_rows(buffer, r0, r1, bands.cols_used, cp, *pool, y, y1, g_.out_width, pooled, winners);
      first = r0;
      end = r1;
    }
    const size_t pooled_plane = pool->out_h * pool->out_w, p0 = ya * pool->out_w, pixels = (yb - ya) * pool->out_w;
    d.nhwc_to_nchw(pooled + p0 * cp, pixels, g_.out_channels, cp, output + n * out_image + p0, pooled_plane);
    if (winners != nullptr) {
      d.nhwc_to_nchw(reinterpret_cast<const float*>(winners + p0 * cp), pixels, g_.out_channels, cp,
                     reinterpret_cast<float*>(indices + n * out_image + p0), pooled_plane);
    }
  };
  // Scratch holds direct_slots(batch) slots: every slot index stays below.
  parallel_for_slots(batch * parts, run_part, std::min({threads, batch * parts, direct_slots(batch)}));
}

size_t Conv2dPlan::scratch_floats(size_t batch) const {
  if (depthwise_) return depthwise_scratch_floats(g_);
  const size_t strided = strided_direct_scratch_floats(batch, nullptr);
  if (phased_) {
    const size_t chunk = std::min(batch, kConvMaxSlots);
    const Conv2dGeometry& p = phased_->geometry();
    return std::max(strided, chunk * p.in_channels * p.in_plane() + stem_phases_->row_floats() + phased_->scratch_floats(chunk));
  }
  const ConvTiling t = conv_tiling(g_, batch, !packed_rows_.empty());
  size_t gemm = std::min(t.items, kConvMaxSlots) * (t.col_floats + gather_floats(t));
  gemm = std::max(gemm, std::min(batch, kConvMaxSlots) * small_padded_floats());
  // Either path may run: the ISA can change between sizing and running.
  const size_t direct = direct_ != nullptr ? direct_slots(batch) * direct_->image_floats() : 0;
  return std::max({gemm, direct, strided});
}

size_t Conv2dPlan::gather_floats(const ConvTiling& t) const {
  return packed_rows_.empty() ? t.gather_floats : rows_ld(g_.out_channels_per_group()) * t.cols;
}

size_t Conv2dPlan::weight_bytes() const {
  size_t bytes = (bias_.size() + weight_.size() + blocks8_.size() + blocks16_.size()) * sizeof(float) +
                 (direct_ ? direct_->bytes() : 0) + (small_ ? small_->bytes() : 0);
  for (const PackedA& p : packed_) bytes += p.bytes();
  for (const PackedB& p : packed_rows_) bytes += p.bytes();
  return bytes + (phased_ ? phased_->weight_bytes() : 0) + (strided_direct_ ? strided_direct_->weight_bytes() : 0);
}

void Conv2dPlan::run(const float* input, float* output, size_t batch, float* scratch,
                     size_t max_threads) const {
  run(dispatch(), input, output, batch, scratch, max_threads);
}

void Conv2dPlan::run(const DispatchTable& table, const float* input, float* output, size_t batch, float* scratch,
                     size_t max_threads, const float* residual) const {
  if (batch == 0) return;
  // Every path applies the clamp and fuse_post's function to its pieces of output as it finishes
  // them (the inner plans of a stem took both from fuse_clamp and fuse_post), and runs the post
  // function on the output in place: the residual's add finds its operand at the same offset.
  const ResidualAdd add{output, residual, &post_};
  const PostOp post = residual != nullptr ? PostOp{&ResidualAdd::apply, &add} : post_;
  if (strided_direct_active(table)) {
    run_strided_direct(table, input, output, batch, nullptr, scratch, max_threads, nullptr, residual);
    return;
  }
  if (phased_) {
    // Chunks of images: their phase planes, then the stride-1 plan over them.
    const Conv2dGeometry& p = phased_->geometry();
    const size_t chunk = std::min(batch, kConvMaxSlots), phase_image = p.in_channels * p.in_plane();
    float* phases = scratch;
    float* row = phases + chunk * phase_image;
    float* inner = row + stem_phases_->row_floats();
    for (size_t n0 = 0; n0 < batch; n0 += chunk) {
      const size_t n = std::min(chunk, batch - n0);
      split_phases(table, input + n0 * g_.in_channels * g_.in_plane(), n, phases, row);
      const size_t out_offset = n0 * g_.out_channels * g_.out_plane();
      phased_->run(table, phases, output + out_offset, n, inner, max_threads, offset_residual(residual, out_offset));
    }
    return;
  }
  if (depthwise_) {
    // ReLU then the clamp, as bounds: min(hi, max(max(lo, 0), x)).
    float lo = relu_ ? 0.0f : -std::numeric_limits<float>::infinity();
    float hi = std::numeric_limits<float>::infinity();
    if (clamp_) {
      lo = std::max(lo, clamp_lo_);
      hi = clamp_hi_;
    }
    const size_t lanes = table.f32_conv.depthwise.block_lanes;
    const std::vector<float>& packed = lanes == 8 ? blocks8_ : blocks16_;
    const float* blocks = (lanes == 8 || lanes == 16) && !packed.empty() ? packed.data() : nullptr;
    depthwise_forward(table, g_, batch, input, weight_.data(), bias_.empty() ? nullptr : bias_.data(), lo, hi, output,
                      scratch, max_threads, post, WindowPath::kAuto, blocks);
    return;
  }
  if (small_active(table)) {
    run_small(table, input, output, batch, nullptr, scratch, max_threads, nullptr, post);
    return;
  }
  if (direct_active(table)) {
    run_direct(table, input, output, batch, nullptr, scratch, max_threads, nullptr, post);
    return;
  }
  run_gemms(table, input, output, batch, scratch, max_threads, residual, post, false, relu_);
}

bool Conv2dPlan::accumulates() const {
  return !depthwise_ && phased_ == nullptr && strided_direct_ == nullptr && direct_ == nullptr && small_ == nullptr &&
         packed_rows_.empty() && !packed_.empty();
}

void Conv2dPlan::run_accumulating(const DispatchTable& table, const float* input, float* output, size_t batch,
                                  float* scratch, size_t max_threads, bool relu) const {
  if (batch == 0) return;
  if (accumulates()) {
    run_gemms(table, input, output, batch, scratch, max_threads, nullptr, post_, true, relu);
    return;
  }
  // Outside the contract (the runtime never takes it): the residual copied out of the way and
  // added as run() adds one, then the ReLU (which has no clamp or post function to follow).
  const size_t n = batch * g_.out_channels * g_.out_plane();
  const std::vector<float> residual(output, output + n);
  run(table, input, output, batch, scratch, max_threads, residual.data());
  if (relu) {
    for (size_t i = 0; i < n; ++i) output[i] = output[i] < 0.0f ? 0.0f : output[i];
  }
}

void Conv2dPlan::run_gemms(const DispatchTable& table, const float* input, float* output, size_t batch, float* scratch,
                           size_t max_threads, const float* residual, const PostOp& post, bool accumulate,
                           bool relu) const {
  const ConvTiling t = balance_tiles(conv_tiling(g_, batch, !packed_rows_.empty()), g_.out_plane(), resolve_threads(max_threads));
  // A scratch slot per thread, not per item: one thread reuses one column buffer, warm in its
  // cache, for item after item (with a slot per item, one thread cycled through eight of them).
  const size_t slots = std::min({t.items, kConvMaxSlots, resolve_threads(max_threads)});
  // Several slots: one thread each, single-threaded GEMMs. One slot: the GEMM gets the threads.
  const size_t gemm_threads = slots > 1 ? 1 : max_threads;
  const size_t m = g_.out_channels_per_group();
  const size_t cin = g_.in_channels_per_group();
  const size_t in_plane = g_.in_plane();
  const size_t plane = g_.out_plane();

  auto run_item = [&](size_t item, float* col, float* gather) {
    const size_t chunk = item / t.tiles;
    const size_t n0 = chunk * t.images_per_chunk;
    const size_t images = std::min(t.images_per_chunk, batch - n0);
    const size_t tile = item % t.tiles;
    const size_t j0 = t.tile_begin(tile, plane);
    const size_t ncols = t.tile_begin(tile + 1, plane) - j0;
    const size_t cols = images * ncols;
    for (size_t grp = 0; grp < g_.groups; ++grp) {
      GemmEpilogue epilogue;
      if (!bias_.empty()) {
        epilogue.bias = bias_.data() + grp * m;
        // Output channels are the GEMM's rows, or its columns with the pixels in rows.
        epilogue.bias_mode = packed_rows_.empty() ? BiasMode::kPerRow : BiasMode::kPerColumn;
      }
      epilogue.relu = relu;
      epilogue.accumulate = accumulate;
      epilogue.clamp = clamp_;
      epilogue.clamp_lo = clamp_lo_;
      epilogue.clamp_hi = clamp_hi_;
      // The GEMM's epilogue runs the post function where the GEMM writes the output itself, or
      // runs it on every tile of the gather buffer unless the function reads its position in the
      // output (a residual): then each piece gets it after moving home, still in cache.
      const bool gemm_writes_output = packed_rows_.empty() && images == 1;
      const PostOp* post_at_home = residual != nullptr && !gemm_writes_output ? &post : nullptr;
      if (post_at_home == nullptr) {
        epilogue.post = post.fn;
        epilogue.post_ctx = post.ctx;
      }
      float* out = output + (n0 * g_.out_channels + grp * m) * plane;
      const float* in = input + (n0 * g_.in_channels + grp * cin) * in_plane;
      if (!packed_rows_.empty() && resolve_threads(gemm_threads) > 1) {
        run_rows_threaded(table, packed_rows_[grp], epilogue, in, images, j0, ncols, col, gather, out, gemm_threads,
                          post_at_home);
        continue;
      }
      // The column matrix [patch x cols]: a pointwise convolution's input planes are one already
      // (its items are whole planes of one image).
      const float* columns = in;
      if (!g_.is_pointwise()) {
        for (size_t i = 0; i < images; ++i) {
          im2col(table.f32_conv, g_, cin, in + i * g_.in_channels * in_plane, j0, ncols, col + i * ncols, cols);
        }
        columns = col;
      }
      if (!packed_rows_.empty()) {
        // Pixels in rows: op(A) = the column matrix transposed, the output channels in the lanes
        // (bias per column); then each image's rows back into its planes.
        const size_t ld = rows_ld(m);
        sgemm_packed_b(table.f32_gemm, cols, true, columns, cols, packed_rows_[grp], gather, ld, epilogue, gemm_threads);
        for (size_t i = 0; i < images; ++i) {
          float* home = out + i * g_.out_channels * plane + j0;
          rows_to_planes(table.f32_conv.direct, gather + i * ncols * ld, ncols, m, ld, true, home, plane);
          if (post_at_home != nullptr) post_at_home->apply(home, ncols, m, plane);
        }
        continue;
      }
      if (images == 1) {
        sgemm_packed_a(table.f32_gemm, packed_[grp], ncols, false, columns, cols, out + j0, plane, epilogue, gemm_threads,
                       BHint::kConvolution);
        continue;
      }
      // Columns of several images come out side by side, then move home; a sum over the residual
      // starts from each image's block of it.
      if (accumulate) {
        for (size_t i = 0; i < images; ++i) {
          const float* home = out + i * g_.out_channels * plane;
          for (size_t r = 0; r < m; ++r) std::memcpy(gather + r * cols + i * plane, home + r * plane, plane * sizeof(float));
        }
      }
      sgemm_packed_a(table.f32_gemm, packed_[grp], cols, false, columns, cols, gather, cols, epilogue, gemm_threads,
                     BHint::kConvolution);
      for (size_t i = 0; i < images; ++i) {
        float* home = out + i * g_.out_channels * plane;
        for (size_t r = 0; r < m; ++r) std::memcpy(home + r * plane, gather + r * cols + i * plane, plane * sizeof(float));
        if (post_at_home != nullptr) post_at_home->apply(home, plane, m, plane);
      }
    }
  };

  const size_t per_slot = t.col_floats + gather_floats(t);
  auto run_in_slot = [&](size_t item, size_t slot) {
    float* col = per_slot != 0 ? scratch + slot * per_slot : nullptr;
    float* gather = col != nullptr ? col + t.col_floats : nullptr;
    run_item(item, col, gather);
  };
  if (slots > 1) {
    parallel_for_slots(t.items, run_in_slot, slots);
  } else {
    for (size_t item = 0; item < t.items; ++item) run_in_slot(item, 0);
  }
}

void Conv2dPlan::run_rows_threaded(const DispatchTable& table, const PackedB& weights, const GemmEpilogue& epilogue,
                                   const float* in, size_t images, size_t j0, size_t ncols, float* col, float* gather,
                                   float* out, size_t max_threads, const PostOp* post_at_home) const {
  const size_t m = g_.out_channels_per_group();
  const size_t cin = g_.in_channels_per_group();
  const size_t ld = rows_ld(m);
  const size_t cols = images * ncols;
  const size_t plane = g_.out_plane();
  const size_t image_in = g_.in_channels * g_.in_plane();
  const size_t image_out = g_.out_channels * plane;
  const size_t threads = resolve_threads(max_threads);
  const bool pointwise = g_.is_pointwise();

  // Either each thread reads all the weights and packs its share of the pixel rows, or the other
  // way round. The weights are split once there are at least as many output channels as pixel
  // rows. Measured on AVX-512, 2 threads, batch 1 (ms, rows split / weights split), alone: 1x1
  // 1024->256 on 14x14 0.34 / 0.37; 1x1 256->1024 on 14x14 0.39 / 0.33; 3x3 512->512 on 7x7
  // 1.03 / 0.84. Inside ResNet-50, where a layer's weights come from memory at batch 1 (each
  // thread reading all of them then reads them twice), the 256-channel layers on 14x14 split
  // their weights too: 3x3/2 256->256 1.52-1.68 -> 1.21-1.46 ms, 1x1 1024->256 0.43-0.44 ->
  // 0.39-0.43 ms (three alternated runs).
  if (m < cols) {
    // Bands of pixel rows, end to end: the band's im2col columns, its rows of the product, their
    // transpose. Bands of whole 12-row tiles where there are enough of them.
    constexpr size_t kBandAlign = 12;
    const size_t units = (cols + kBandAlign - 1) / kBandAlign;
    const size_t bands = std::min(threads, units);
    // visit(image, first column in the image, columns, first pixel row) for the pieces of pixel
    // rows [p0, p1) in each image of the item.
    auto for_each_piece = [&](size_t p0, size_t p1, auto visit) {
      for (size_t i = p0 / ncols; i < images && i * ncols < p1; ++i) {
        const size_t a = std::max(p0, i * ncols), b = std::min(p1, (i + 1) * ncols);
        visit(i, a - i * ncols, b - a, a);
      }
    };
    parallel_for(
        bands,
        [&](size_t band) {
          const size_t p0 = std::min(cols, units * band / bands * kBandAlign);
          const size_t p1 = std::min(cols, units * (band + 1) / bands * kBandAlign);
          if (p0 >= p1) return;
          const float* columns = in;
          if (!pointwise) {
            for_each_piece(p0, p1, [&](size_t i, size_t q, size_t count, size_t p) {
              im2col(table.f32_conv, g_, cin, in + i * image_in, j0 + q, count, col + p, cols);
            });
            columns = col;
          }
          sgemm_packed_b(table.f32_gemm, p1 - p0, true, columns + p0, cols, weights, gather + p0 * ld, ld, epilogue, 1);
          for_each_piece(p0, p1, [&](size_t i, size_t q, size_t count, size_t p) {
            float* home = out + i * image_out + j0 + q;
            rows_to_planes(table.f32_conv.direct, gather + p * ld, count, m, ld, true, home, plane);
            if (post_at_home != nullptr) post_at_home->apply(home, count, m, plane);
          });
        },
        bands);
    return;
  }

  const float* columns = in;
  if (!pointwise) {
    // The column matrix by input channels: each part writes the rows of its channels' taps.
    const size_t taps = g_.kernel_h * g_.kernel_w;
    const size_t parts = std::min(threads, cin);
    parallel_for(
        parts,
        [&](size_t t) {
          const size_t c0 = cin * t / parts, c1 = cin * (t + 1) / parts;
          for (size_t i = 0; i < images; ++i) {
            im2col(table.f32_conv, g_, c1 - c0, in + i * image_in + c0 * g_.in_plane(), j0, ncols,
                   col + c0 * taps * cols + i * ncols, cols);
          }
        },
        parts);
    columns = col;
  }
  // Output channels in whole column tiles: each part multiplies its share of the weights and
  // moves its channels into the planes.
  const size_t nr = table.f32_gemm.nr;
  const size_t units = (m + nr - 1) / nr;
  const size_t parts = std::min(threads, units);
  parallel_for(
      parts,
      [&](size_t t) {
        const size_t c0 = std::min(m, units * t / parts * nr), c1 = std::min(m, units * (t + 1) / parts * nr);
        if (c0 >= c1) return;
        sgemm_packed_b_columns(table.f32_gemm, cols, true, columns, cols, weights, c0, c1, gather, ld, epilogue);
        for (size_t i = 0; i < images; ++i) {
          float* home = out + i * image_out + c0 * plane + j0;
          rows_to_planes(table.f32_conv.direct, gather + i * ncols * ld + c0, ncols, c1 - c0, ld, true, home, plane);
          if (post_at_home != nullptr) post_at_home->apply(home, ncols, c1 - c0, plane);
        }
      },
      parts);
}

void conv2d_forward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                    const float* bias, bool relu, float* output, size_t max_threads) {
  const Conv2dPlan plan(g, weight, bias, relu);
  ScratchBuffer scratch(plan.scratch_floats(batch));
  plan.run(input, output, batch, scratch.data(), max_threads);
}

bool max_pool_windows_cover(size_t in, size_t kernel, size_t stride, size_t dilation, size_t pad, size_t out) {
  if (kernel == 0 || stride == 0 || dilation == 0 || out == 0 || in == 0) return false;
  for (size_t y = 0; y < out; ++y) {
    bool any = false;
    for (size_t i = 0; i < kernel && !any; ++i) {
      const size_t at = y * stride + i * dilation;  // position + pad
      any = at >= pad && at - pad < in;
    }
    if (!any) return false;
  }
  return true;
}

bool conv_max_pool_valid(const Conv2dGeometry& g, const ConvMaxPool& pool) {
  return max_pool_windows_cover(g.out_height, pool.kernel_h, pool.stride_h, pool.dilation_h, pool.pad_top, pool.out_h) &&
         max_pool_windows_cover(g.out_width, pool.kernel_w, pool.stride_w, pool.dilation_w, pool.pad_left, pool.out_w);
}

void conv2d_max_pool_forward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                             const float* bias, const ConvMaxPool& pool, float* output, int32_t* indices,
                             size_t max_threads) {
  const Conv2dPlan plan(g, weight, bias, false);
  // One table for the call: the fused path where it has one, else the two steps (run_max_pooled
  // stages them itself, so the fused scratch is all it needs; none without a fused path).
  const DispatchTable& t = dispatch();
  ScratchBuffer scratch(plan.can_fuse_max_pool(t) ? plan.max_pooled_scratch_floats(batch, pool) : 0);
  plan.run_max_pooled(t, input, output, batch, pool, scratch.data(), max_threads, indices);
}

}  // namespace kiln
