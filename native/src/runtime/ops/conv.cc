// Conv: NCHW 2-D convolution on the prepacked Conv2dPlan (groups, dilation, strides, asymmetric
// pads), bias and the fused activation. Relu runs inside the kernel; other activations on the
// output right after. An optional fused pool (attrs `pool` = 'MaxPool' | 'AveragePool' and
// `pool_kernel`, `pool_strides`, ...) runs the convolution a few images at a time into scratch
// that stays in cache and pools from there: the full-size conv output never goes to memory.
// With attr `winograd` = 1 (graphOptimizationLevel 'all') a 3x3 stride-1 convolution that
// winograd_fits runs as Winograd F(2x2, 3x3) or F(4x4, 3x3) on AVX-512 (conv/winograd.h), 2x2/2
// max pools inside.
#include <algorithm>
#include <memory>
#include <sstream>

#include "common/dispatch.h"
#include "conv/winograd.h"
#include "kiln/conv.h"
#include "runtime/activation.h"
#include "runtime/ops/conv-attrs.h"
#include "runtime/ops/pool2d.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

// Bytes of conv output a fused pool consumes per chunk. Measured on SeedCNN MNIST at batch 64
// (Zen 5, single thread, alternating A/B runs): 32-256 KiB chunks make conv+relu+pool 5-10%
// faster than separate steps; 512 KiB and more are no better or slower.
constexpr size_t kFusedChunkBytes = size_t{128} << 10;

size_t round16(size_t n) { return (n + 15) / 16 * 16; }

// ConvStep's winograd_tile: off, chosen by cost, or else the tile side (2 or 4).
constexpr size_t kNoWinograd = 0;
constexpr size_t kWinogradByCost = 1;

class ConvStep : public PlanStep {
 public:
  ConvStep(const Conv2dGeometry& g, const float* weight, const float* bias, Activation act, const Pool2d* pool,
           size_t winograd_tile)
      : conv_(g, weight, bias, act.is_relu()), act_(act), fused_pool_(pool != nullptr) {
    if (pool) pool_ = *pool;
    // 2-D max pools after ReLU (or nothing) can run inside the direct convolution.
    direct_pool_ = fused_pool_ && (act_.kind == Activation::kNone || act_.is_relu()) &&
                   pool_.as_conv_max_pool(&direct_window_);
    if (winograd_tile != kNoWinograd && winograd_fits(g)) {
      winograd_pool_ = direct_pool_ && winograd_pool_fits(g, direct_window_);
      const size_t tile = winograd_tile != kWinogradByCost ? winograd_tile
                                                           : winograd_tile_for(g, winograd_pool_ ? &direct_window_ : nullptr);
      winograd_ = std::make_unique<const WinogradConv>(g, weight, bias, tile);
    }
  }

  void run(const StepBuffers& io, size_t batch, float* scratch, size_t max_threads) const override {
    // One table for the whole step: setIsa() may switch the active one on another thread while
    // this runs, and every path below is chosen and run on the same table (a kernel this one
    // lacks is never called; the paths that need none are always there).
    const DispatchTable& t = dispatch();
    const bool winograd = winograd_ && WinogradConv::available(t);
    if (winograd && winograd_pool_ &&
        winograd_->run(t, io.in[0], io.out[0], batch, &direct_window_, act_.is_relu(), scratch, max_threads)) {
      return;
    }
    if (direct_pool_ && conv_.can_fuse_max_pool(t) && !winograd) {
      conv_.run_max_pooled(t, io.in[0], io.out[0], batch, direct_window_, scratch, max_threads);
      return;
    }
    if (!fused_pool_) {
      convolve(t, io.in[0], io.out[0], batch, scratch, max_threads);
      activate(io.out[0], batch, max_threads);
      return;
    }
    const Conv2dGeometry& g = conv_.geometry();
    const size_t in_image = g.in_channels * g.in_plane(), conv_image = g.out_channels * g.out_plane();
    const size_t pool_image = g.out_channels * pool_.out_plane();
    const size_t chunk = chunk_images(batch, max_threads);
    float* conv_out = scratch;
    float* conv_scratch = scratch + round16(chunk * conv_image);
    for (size_t start = 0; start < batch; start += chunk) {
      const size_t n = std::min(chunk, batch - start);
      convolve(t, io.in[0] + start * in_image, conv_out, n, conv_scratch, max_threads);
      activate(conv_out, n, max_threads);
      pool_.run(conv_out, io.out[0] + start * pool_image, n * g.out_channels, max_threads);
    }
  }
  size_t scratch_floats(size_t batch, size_t threads) const override {
    if (!fused_pool_) return convolve_scratch_floats(batch, threads);
    const Conv2dGeometry& g = conv_.geometry();
    const size_t chunk = chunk_images(batch, threads);
    const size_t staged = round16(chunk * g.out_channels * g.out_plane()) + convolve_scratch_floats(chunk, threads);
    // The ISA may change between planning and running: room for every path.
    size_t fused = direct_pool_ ? conv_.max_pooled_scratch_floats(batch, direct_window_) : 0;
    if (winograd_pool_) fused = std::max(fused, winograd_->scratch_floats(batch, threads, &direct_window_));
    return std::max(staged, fused);
  }
  size_t weight_bytes() const override { return conv_.weight_bytes() + (winograd_ ? winograd_->bytes() : 0); }
  std::string detail() const override {
    const Conv2dGeometry& g = conv_.geometry();
    std::ostringstream s;
    s << g.kernel_h << "x" << g.kernel_w << " s" << g.stride_h << "x" << g.stride_w << " "
      << g.in_channels << "->" << g.out_channels;
    if (g.groups > 1) s << " g" << g.groups;
    if (g.dilation_h > 1 || g.dilation_w > 1) s << " d" << g.dilation_h << "x" << g.dilation_w;
    if (act_.kind != Activation::kNone) s << " " << act_.name();
    if (fused_pool_) s << " + pool " << pool_.detail();
    if (winograd_) s << " (winograd F(" << winograd_->tile() << "x" << winograd_->tile() << ", 3x3) on avx512)";
    return s.str();
  }

 private:
  // Images per chunk: a cache-sized share for every thread the run may use (each core has its
  // own L2, and the convolution spreads a chunk's images over the threads).
  size_t chunk_images(size_t batch, size_t threads) const {
    const Conv2dGeometry& g = conv_.geometry();
    const size_t bytes = g.out_channels * g.out_plane() * sizeof(float);
    const size_t per_thread = std::max<size_t>(1, kFusedChunkBytes / bytes);
    return std::max<size_t>(1, std::min(batch, per_thread * threads));
  }
  // Winograd where it applies and `t` runs it, else conv_.run on `t`.
  void convolve(const DispatchTable& t, const float* x, float* y, size_t batch, float* scratch,
                size_t max_threads) const {
    if (winograd_ && winograd_->run(t, x, y, batch, nullptr, act_.is_relu(), scratch, max_threads)) return;
    conv_.run(t, x, y, batch, scratch, max_threads);
  }
  size_t convolve_scratch_floats(size_t batch, size_t threads) const {
    const size_t plain = conv_.scratch_floats(batch);
    return winograd_ ? std::max(plain, winograd_->scratch_floats(batch, threads, nullptr)) : plain;
  }
  void activate(float* y, size_t batch, size_t max_threads) const {
    if (act_.kind == Activation::kNone || act_.is_relu()) return;
    const Conv2dGeometry& g = conv_.geometry();
    for_chunks(batch * g.out_channels * g.out_plane(), kElementwiseGrain, max_threads,
               [&](size_t b, size_t e) { act_.apply(y + b, e - b); });
  }

  Conv2dPlan conv_;
  Activation act_;
  bool fused_pool_;
  Pool2d pool_;
  bool direct_pool_ = false;
  ConvMaxPool direct_window_;
  std::unique_ptr<const WinogradConv> winograd_;  // null unless asked for and winograd_fits
  bool winograd_pool_ = false;                     // the fused pool runs inside the Winograd kernel
};

}  // namespace

std::unique_ptr<PlanStep> make_conv(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_rank(0, 3);
  const PlanShape& x = ctx.in()[0];
  const PlanTensor& w = ctx.weight("W");
  if (w.shape.size() != 4) ctx.fail("weights.W", "a 4-D weight (OIHW)", shape_text(w.shape));
  Conv2dGeometry g = conv_geometry_from_attrs(ctx, x, w.shape[0], {int64_t(w.shape[2]), int64_t(w.shape[3])});
  const std::vector<size_t> w_shape = {g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w};
  ctx.weight("W", w_shape);
  const PlanTensor* b = ctx.weight_opt("B", {g.out_channels});
  complete_conv_geometry(ctx, x, g);
  const std::string pool_op = ctx.choice_or("pool", {"None", "MaxPool", "AveragePool"}, "None");
  // winograd 1: F(2x2, 3x3) or F(4x4, 3x3), by cost (winograd_tile_for), unless winograd_tile
  // names one (the tests run both).
  const bool winograd = ctx.integer_or("winograd", 0, 1, 0) == 1;
  const int64_t tile = ctx.integer_or("winograd_tile", 0, 4, 0);
  if (tile != 0 && tile != 2 && tile != 4) ctx.fail("attrs.winograd_tile", "0 (by cost), 2 or 4", std::to_string(tile));
  const size_t winograd_tile = !winograd ? kNoWinograd : tile == 0 ? kWinogradByCost : static_cast<size_t>(tile);
  if (pool_op == "None") {
    ctx.expect_output_shape(0, {g.out_channels, g.out_height, g.out_width});
    return std::make_unique<ConvStep>(g, w.data, b ? b->data : nullptr, Activation::parse(ctx), nullptr, winograd_tile);
  }
  const Pool2d pool = Pool2d::parse(ctx, "pool_", {g.out_channels, g.out_height, g.out_width}, pool_op == "MaxPool");
  ctx.expect_output_shape(0, pool.output_shape(g.out_channels, 2));
  return std::make_unique<ConvStep>(g, w.data, b ? b->data : nullptr, Activation::parse(ctx), &pool, winograd_tile);
}

}  // namespace runtime
}  // namespace kiln
