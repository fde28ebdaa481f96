#include "runtime/ops/pool2d.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

#include "common/dispatch.h"
#include "runtime/parallel.h"

namespace kiln {
namespace runtime {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 31;

// Output length, 0 when the window does not fit.
int64_t pool_output_size(const PoolAxis& a, bool ceil_mode) {
  const int64_t span = a.dilation * (a.kernel - 1) + 1;
  const int64_t avail = a.in + a.pad_begin + a.pad_end - span;
  if (avail < 0) return 0;
  int64_t out = (ceil_mode ? avail + a.stride - 1 : avail) / a.stride + 1;
  if (ceil_mode && (out - 1) * a.stride >= a.in + a.pad_begin) --out;
  return out;
}

// Outputs [lo, hi) along an axis whose windows lie wholly inside the input.
std::pair<int64_t, int64_t> inner_outputs(const PoolAxis& a) {
  const int64_t last = a.in - 1 - a.dilation * (a.kernel - 1) + a.pad_begin;  // the last window start + pad that fits
  const int64_t hi = last < 0 ? 0 : std::min(a.out, last / a.stride + 1);
  const int64_t lo = std::min(hi, (a.pad_begin + a.stride - 1) / a.stride);
  return {lo, hi};
}

}  // namespace

Pool2d::Pool2d(bool max, bool include_pad, PoolAxis h, PoolAxis w)
    : max_(max), include_pad_(include_pad), h_(h), w_(w) {
  interior_ = interior();
  // Max pools of usual windows run planar (conv/phase-planes.h). Past these bounds (a stride of
  // 100 would make 10,000 phase planes) the window-by-window loop below is the better fit.
  const bool usual = h_.stride <= kMaxPlanarStride && w_.stride <= kMaxPlanarStride &&
                     h_.kernel * w_.kernel <= kMaxPlanarTaps && h_.out > 0 && w_.out > 0;
  if (max_ && usual) {
    PlanarWindow pw;
    pw.in_h = static_cast<size_t>(h_.in);
    pw.in_w = static_cast<size_t>(w_.in);
    pw.out_h = static_cast<size_t>(h_.out);
    pw.out_w = static_cast<size_t>(w_.out);
    pw.kernel_h = static_cast<size_t>(h_.kernel);
    pw.kernel_w = static_cast<size_t>(w_.kernel);
    pw.stride_h = static_cast<size_t>(h_.stride);
    pw.stride_w = static_cast<size_t>(w_.stride);
    pw.dilation_h = static_cast<size_t>(h_.dilation);
    pw.dilation_w = static_cast<size_t>(w_.dilation);
    pw.pad_top = static_cast<size_t>(h_.pad_begin);
    pw.pad_left = static_cast<size_t>(w_.pad_begin);
    planar_ = std::make_shared<const PhasePlanes>(pw);
    const ChannelBlockPlan blocks(pw);
    if (blocks.fits()) blocks_ = std::make_shared<const ChannelBlockPlan>(blocks);
  }
}

Pool2d Pool2d::parse(const StepContext& ctx, const std::string& prefix, const PlanShape& x, bool max) {
  if (x.size() != 2 && x.size() != 3) {
    ctx.fail("inputs[0]", "a value of rank 3 or 4 (N, C, [H,] W)", "per-image shape " + shape_text(x));
  }
  const size_t spatial = x.size() - 1;
  auto name = [&](const char* n) { return prefix + n; };
  const auto kernel = ctx.integers_or(name("kernel").c_str(), spatial, 1, kMaxDim, {});
  if (kernel.empty()) ctx.fail("attrs." + name("kernel"), std::to_string(spatial) + " kernel sizes", "undefined");
  const auto strides = ctx.integers_or(name("strides").c_str(), spatial, 1, kMaxDim, std::vector<int64_t>(spatial, 1));
  const auto pads = ctx.integers_or(name("pads").c_str(), 2 * spatial, 0, kMaxDim, std::vector<int64_t>(2 * spatial, 0));
  const auto dilations = ctx.integers_or(name("dilations").c_str(), spatial, 1, kMaxDim, std::vector<int64_t>(spatial, 1));
  const bool ceil_mode = ctx.integer_or(name("ceilMode").c_str(), 0, 1, 0) == 1;
  const bool include_pad = !max && ctx.integer_or(name("countIncludePad").c_str(), 0, 1, 0) == 1;
  PoolAxis axes[2];
  for (size_t i = 0; i < spatial; ++i) {
    PoolAxis& a = axes[2 - spatial + i];
    a.in = static_cast<int64_t>(x[1 + i]);
    a.kernel = kernel[i];
    a.stride = strides[i];
    a.pad_begin = pads[i];
    a.pad_end = pads[spatial + i];
    a.dilation = dilations[i];
    if (a.pad_begin >= a.dilation * (a.kernel - 1) + 1 || a.pad_end >= a.dilation * (a.kernel - 1) + 1) {
      ctx.fail("attrs." + name("pads"), "pads smaller than the window", std::to_string(std::max(a.pad_begin, a.pad_end)));
    }
    a.out = pool_output_size(a, ceil_mode);
    if (a.out <= 0) ctx.fail("attrs." + name("kernel"), "a window that fits the padded input " + shape_text(x), std::to_string(a.kernel));
  }
  return Pool2d(max, include_pad, axes[0], axes[1]);
}

PlanShape Pool2d::output_shape(size_t channels, size_t spatial) const {
  PlanShape out = {channels};
  if (spatial == 2) out.push_back(static_cast<size_t>(h_.out));
  out.push_back(static_cast<size_t>(w_.out));
  return out;
}

bool Pool2d::channel_blocks_fit(const DispatchTable& t) const {
  return blocks_ != nullptr && t.f32_pool.max_channel_block != nullptr && t.f32_pool.block_lanes <= ChannelBlockPlan::kMaxLanes;
}

void Pool2d::run_blocks(const DispatchTable& t, const float* x, float* y, size_t planes, size_t max_threads) const {
  const ChannelBlockPlan& plan = *blocks_;
  const size_t lanes = t.f32_pool.block_lanes, in = in_plane(), out = out_plane();
  const size_t blocks = (planes + lanes - 1) / lanes;
  // Planes are independent: a block may span two images' channels.
  const size_t grain = std::max<size_t>(1, kElementwiseGrain / std::max<size_t>(1, lanes * out * plan.taps()));
  for_chunks(blocks, grain, max_threads, [&](size_t b, size_t e) {
    // Per-thread scratch that stays with the thread: a pool step's plan arena has no slot for it.
    thread_local std::vector<float> buffer;
    if (buffer.size() < plan.buffer_floats(lanes)) buffer.resize(plan.buffer_floats(lanes));
    for (size_t blk = b; blk < e; ++blk) {
      const size_t p0 = blk * lanes;
      F32ChannelBlockArgs a;
      a.channels = std::min(lanes, planes - p0);
      const bool done = plan.run_bands(a, lanes, x + p0 * in, y + p0 * out, -std::numeric_limits<float>::infinity(),
                                       buffer.data(), [&](const F32ChannelBlockArgs& args) { return t.f32_pool.max_channel_block(args); });
      // A NaN in the block: its planes planar, where NaN wins as the operator defines.
      if (!done) run_planar(t, x + p0 * in, y + p0 * out, a.channels, 1);
    }
  });
}

void Pool2d::run(const float* x, float* y, size_t planes, size_t max_threads, WindowPath path) const {
  // One table for the whole call (setIsa may switch the active one meanwhile).
  const DispatchTable& t = dispatch();
  if (path != WindowPath::kPlanar && channel_blocks_fit(t)) {
    run_blocks(t, x, y, planes, max_threads);
    return;
  }
  run_planar(t, x, y, planes, max_threads);
}

void Pool2d::run_planar(const DispatchTable& t, const float* x, float* y, size_t planes, size_t max_threads) const {
  const size_t in = in_plane(), out = out_plane();
  if (planar_) {
    const PhasePlanes& l = *planar_;
    const size_t taps = l.taps();
    const size_t grain = std::max<size_t>(1, kElementwiseGrain / std::max<size_t>(1, l.flat_outputs() * taps));
    for_chunks(planes, grain, max_threads, [&](size_t b, size_t e) {
      // Per-thread scratch that stays with the thread: a pool step's plan arena has no slot for it.
      thread_local std::vector<float> slot;
      thread_local std::vector<const float*> tap_ptr;
      if (slot.size() < l.slot_floats()) slot.resize(l.slot_floats());
      if (tap_ptr.size() < taps) tap_ptr.resize(taps);
      for (size_t p = b; p < e; ++p) {
        l.split(t.f32_conv.depthwise, x + p * in, -std::numeric_limits<float>::infinity(), slot.data(), tap_ptr.data());
        t.f32_pool.max_taps(tap_ptr.data(), taps, l.flat_outputs(), l.flat(slot.data()));
        l.copy_out(l.flat(slot.data()), y + p * out);
      }
    });
    return;
  }
  const size_t grain = std::max<size_t>(1, kElementwiseGrain / std::max<size_t>(1, in));
  for_chunks(planes, grain, max_threads, [&](size_t b, size_t e) {
    for (size_t p = b; p < e; ++p) {
      if (max_) {
        plane(x + p * in, y + p * out);
      } else {
        plane_avg(t.f32_pool.avg_rows, x + p * in, y + p * out);
      }
    }
  });
}

std::string Pool2d::detail() const {
  std::ostringstream s;
  s << h_.kernel << "x" << w_.kernel << " s" << h_.stride << "x" << w_.stride;
  if (h_.pad_begin || h_.pad_end || w_.pad_begin || w_.pad_end) {
    s << " p" << h_.pad_begin << "," << w_.pad_begin << "," << h_.pad_end << "," << w_.pad_end;
  }
  return s.str();
}

bool Pool2d::as_conv_max_pool(ConvMaxPool* pool) const {
  // Padding and ceil-mode overhangs included, as long as every window covers an input position
  // (the fused paths skip the taps outside, as this step's kernels do).
  if (!max_ || h_.pad_begin < 0 || w_.pad_begin < 0) return false;
  auto covers = [](const PoolAxis& a) {
    return max_pool_windows_cover(static_cast<size_t>(a.in), static_cast<size_t>(a.kernel), static_cast<size_t>(a.stride),
                                  static_cast<size_t>(a.dilation), static_cast<size_t>(a.pad_begin), static_cast<size_t>(a.out));
  };
  if (!covers(h_) || !covers(w_)) return false;
  pool->pad_top = static_cast<size_t>(h_.pad_begin);
  pool->pad_left = static_cast<size_t>(w_.pad_begin);
  pool->kernel_h = static_cast<size_t>(h_.kernel);
  pool->kernel_w = static_cast<size_t>(w_.kernel);
  pool->stride_h = static_cast<size_t>(h_.stride);
  pool->stride_w = static_cast<size_t>(w_.stride);
  pool->dilation_h = static_cast<size_t>(h_.dilation);
  pool->dilation_w = static_cast<size_t>(w_.dilation);
  pool->out_h = static_cast<size_t>(h_.out);
  pool->out_w = static_cast<size_t>(w_.out);
  return true;
}

// Every window lies inside the input: no bounds checks, and the 2x2 stride-2 case unrolled.
bool Pool2d::interior() const {
  auto inside = [](const PoolAxis& a) {
    return a.pad_begin == 0 && (a.out - 1) * a.stride + a.dilation * (a.kernel - 1) + 1 <= a.in;
  };
  return inside(h_) && inside(w_);
}

void Pool2d::plane_max_interior(const float* x, float* y) const {
  if (h_.kernel == 2 && w_.kernel == 2 && w_.stride == 2 && h_.dilation == 1 && w_.dilation == 1) {
    for (int64_t oh = 0; oh < h_.out; ++oh) {
      const float* r0 = x + oh * h_.stride * w_.in;
      const float* r1 = r0 + w_.in;
      float* out = y + oh * w_.out;
      for (int64_t ow = 0; ow < w_.out; ++ow) {
        const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
        const float ab = b > a ? b : a, cd = d > c ? d : c;
        const float m = cd > ab ? cd : ab;
        const bool nan = (a != a) | (b != b) | (c != c) | (d != d);
        out[ow] = nan ? std::numeric_limits<float>::quiet_NaN() : m;
      }
    }
    return;
  }
  for (int64_t oh = 0; oh < h_.out; ++oh) {
    for (int64_t ow = 0; ow < w_.out; ++ow) {
      const float* base = x + oh * h_.stride * w_.in + ow * w_.stride;
      float best = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t i = 0; i < h_.kernel; ++i) {
        const float* row = base + i * h_.dilation * w_.in;
        for (int64_t j = 0; j < w_.kernel; ++j) {
          const float v = row[j * w_.dilation];
          nan |= v != v;
          best = v > best ? v : best;
        }
      }
      y[oh * w_.out + ow] = nan ? std::numeric_limits<float>::quiet_NaN() : best;
    }
  }
}

void Pool2d::plane(const float* x, float* y) const {
  if (max_ && interior_) {
    plane_max_interior(x, y);
    return;
  }
  for (int64_t oh = 0; oh < h_.out; ++oh) {
    const int64_t h0 = oh * h_.stride - h_.pad_begin;
    for (int64_t ow = 0; ow < w_.out; ++ow) {
      const int64_t w0 = ow * w_.stride - w_.pad_begin;
      y[oh * w_.out + ow] = max_ ? window_max(x, h0, w0) : window_avg(x, h0, w0);
    }
  }
}

void Pool2d::plane_avg(F32AvgRowsFn avg_rows, const float* x, float* y) const {
  const auto [lo, hi] = inner_outputs(w_);
  const auto [top, bottom] = inner_outputs(h_);
  const size_t n = static_cast<size_t>(hi - lo);
  const size_t stride_w = static_cast<size_t>(w_.stride);
  auto clipped_columns = [&](int64_t oh) {
    const int64_t h0 = oh * h_.stride - h_.pad_begin;
    for (int64_t ow = 0; ow < lo; ++ow) y[oh * w_.out + ow] = window_avg(x, h0, ow * w_.stride - w_.pad_begin);
    for (int64_t ow = hi; ow < w_.out; ++ow) y[oh * w_.out + ow] = window_avg(x, h0, ow * w_.stride - w_.pad_begin);
  };
  // Tap offsets from a window's top-left corner, row-major: the scalar loop's order.
  thread_local std::vector<ptrdiff_t> taps;
  taps.clear();
  // Rows whose windows the top or bottom edge clips: a row at a time, with the taps it has.
  auto edge_row = [&](int64_t oh) {
    clipped_columns(oh);
    if (n == 0) return;
    const int64_t h0 = oh * h_.stride - h_.pad_begin;
    taps.clear();
    for (int64_t i = 0; i < h_.kernel; ++i) {
      const int64_t h = h0 + i * h_.dilation;
      if (h < 0 || h >= h_.in) continue;
      for (int64_t j = 0; j < w_.kernel; ++j) taps.push_back((h - h0) * w_.in + j * w_.dilation);
    }
    const int64_t inside = static_cast<int64_t>(taps.size()) / w_.kernel;
    const int64_t divisor = (include_pad_ ? h_.framed_taps(h0) : inside) * w_.kernel;
    float* out = y + oh * w_.out + lo;
    if (divisor == 0) {
      std::fill(out, out + n, 0.0f);  // no tap inside: window_avg's 0
      return;
    }
    avg_rows(x + h0 * w_.in + lo * w_.stride - w_.pad_begin, taps.data(), taps.size(), 0, stride_w, n, 1,
             static_cast<float>(divisor), out, 0);
  };
  for (int64_t oh = 0; oh < top; ++oh) edge_row(oh);
  for (int64_t oh = bottom; oh < h_.out; ++oh) edge_row(oh);
  if (bottom <= top) return;
  for (int64_t oh = top; oh < bottom; ++oh) clipped_columns(oh);
  if (n == 0) return;
  // The block of windows wholly inside the input: every one has all kernel taps.
  taps.clear();
  for (int64_t i = 0; i < h_.kernel; ++i) {
    for (int64_t j = 0; j < w_.kernel; ++j) taps.push_back(i * h_.dilation * w_.in + j * w_.dilation);
  }
  avg_rows(x + (top * h_.stride - h_.pad_begin) * w_.in + lo * w_.stride - w_.pad_begin, taps.data(), taps.size(),
           static_cast<size_t>(h_.stride * w_.in), stride_w, n, static_cast<size_t>(bottom - top),
           static_cast<float>(h_.kernel * w_.kernel), y + top * w_.out + lo, static_cast<size_t>(w_.out));
}

float Pool2d::window_max(const float* x, int64_t h0, int64_t w0) const {
  float best = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (int64_t i = 0; i < h_.kernel; ++i) {
    const int64_t h = h0 + i * h_.dilation;
    if (h < 0 || h >= h_.in) continue;
    const float* row = x + h * w_.in;
    for (int64_t j = 0; j < w_.kernel; ++j) {
      const int64_t w = w0 + j * w_.dilation;
      if (w < 0 || w >= w_.in) continue;
      const float v = row[w];
      nan |= v != v;
      best = v > best ? v : best;
    }
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : best;
}

float Pool2d::window_avg(const float* x, int64_t h0, int64_t w0) const {
  float sum = 0.0f;
  int64_t inside = 0;
  for (int64_t i = 0; i < h_.kernel; ++i) {
    const int64_t h = h0 + i * h_.dilation;
    if (h < 0 || h >= h_.in) continue;
    const float* row = x + h * w_.in;
    for (int64_t j = 0; j < w_.kernel; ++j) {
      const int64_t w = w0 + j * w_.dilation;
      if (w < 0 || w >= w_.in) continue;
      sum += row[w];
      ++inside;
    }
  }
  const int64_t divisor = include_pad_ ? h_.framed_taps(h0) * w_.framed_taps(w0) : inside;
  return divisor == 0 ? 0.0f : sum / static_cast<float>(divisor);
}

}  // namespace runtime
}  // namespace kiln
