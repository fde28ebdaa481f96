// Sliding-window max / average pooling over NCHW planes: the MaxPool/AveragePool step and the
// pool fused into a Conv step share it. 1-D windows are 2-D ones with a unit height.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "conv/channel-block-plan.h"
#include "conv/phase-planes.h"
#include "kiln/conv.h"
#include "pool/pool-rows.h"
#include "runtime/step.h"

namespace kiln {
struct DispatchTable;
namespace runtime {

struct PoolAxis {
  int64_t in = 1, out = 1, kernel = 1, stride = 1, pad_begin = 0, pad_end = 0, dilation = 1;
  // Taps of the window starting at `start` inside the padded frame [-pad_begin, in + pad_end): an
  // average pool's divisor with count_include_pad (ceil-mode overhang beyond the frame never counts).
  int64_t framed_taps(int64_t start) const {
    int64_t n = 0;
    for (int64_t i = 0; i < kernel; ++i) {
      const int64_t at = start + i * dilation;
      n += at >= -pad_begin && at < in + pad_end;
    }
    return n;
  }
};

class Pool2d {
 public:
  Pool2d() = default;
  Pool2d(bool max, bool include_pad, PoolAxis h, PoolAxis w);

  // Reads `<prefix>kernel`, `<prefix>strides`, `<prefix>pads`, `<prefix>dilations`,
  // `<prefix>ceilMode` (and `<prefix>countIncludePad` for average) for per-image input x = [C, (H,) W].
  static Pool2d parse(const StepContext& ctx, const std::string& prefix, const PlanShape& x, bool max);

  // Per-image output shape for `channels` channels and `spatial` (1 or 2) spatial dims.
  PlanShape output_shape(size_t channels, size_t spatial) const;
  size_t in_plane() const { return static_cast<size_t>(h_.in * w_.in); }
  size_t out_plane() const { return static_cast<size_t>(h_.out * w_.out); }
  // y[p] = pool(x[p]) for `planes` consecutive planes. Max pools run in channel blocks where the
  // active table has the kernel and the window fits (conv/channel-block-plan.h), else planar; both
  // give the same bits. `path` forces one (tests); kChannelBlocks where blocks cannot run is planar.
  void run(const float* x, float* y, size_t planes, size_t max_threads, WindowPath path = WindowPath::kAuto) const;
  // Whether the channel blocks run this pool on table t (kAuto takes them whenever they do).
  bool channel_blocks_fit(const DispatchTable& t) const;
  std::string detail() const;
  // The window along height and width (int8 pooling reads them into its own geometry).
  const PoolAxis& height_axis() const { return h_; }
  const PoolAxis& width_axis() const { return w_; }
  bool is_max() const { return max_; }
  // Average pools: whether the divisor counts the padded frame (count_include_pad).
  bool include_pad() const { return include_pad_; }
  // A max pool as the window a convolution can pool its own output with (Conv2dPlan::
  // run_max_pooled), padding and ceil-mode overhang included. False for average pools and for
  // windows that cover no input position.
  bool as_conv_max_pool(ConvMaxPool* pool) const;

 private:
  bool interior() const;
  void plane(const float* x, float* y) const;
  void plane_max_interior(const float* x, float* y) const;
  // An average pool's plane: the windows inside the input as one block (f32_pool.avg_rows), the
  // ones an edge clips by window_avg or a row at a time; window_avg's bits throughout.
  void plane_avg(F32AvgRowsFn avg_rows, const float* x, float* y) const;
  float window_max(const float* x, int64_t h0, int64_t w0) const;
  float window_avg(const float* x, int64_t h0, int64_t w0) const;

  static constexpr int64_t kMaxPlanarStride = 4, kMaxPlanarTaps = 1024;

  bool max_ = true, include_pad_ = false;
  PoolAxis h_, w_;
  bool interior_ = false;
  // Max pools: the planar layout and kernels (conv/phase-planes.h, f32_pool.max_taps); null
  // for average pools and unusual windows, which take plane() below.
  std::shared_ptr<const PhasePlanes> planar_;
  // Max pools whose window fits a channel block's buffer; null otherwise.
  std::shared_ptr<const ChannelBlockPlan> blocks_;
  void run_planar(const DispatchTable& t, const float* x, float* y, size_t planes, size_t max_threads) const;
  void run_blocks(const DispatchTable& t, const float* x, float* y, size_t planes, size_t max_threads) const;
};

}  // namespace runtime
}  // namespace kiln
