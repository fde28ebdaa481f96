// SparseConvF32's driver: per task (one image, a range of output-channel groups) it zero-pads the
// image into scratch when the convolution is padded, then walks spans of output rows (a span's
// input rows stay in L2 for every group of a large plane; a small plane is one span) and, per
// chunk of groups, runs the kernel into a buffer that stays in L1/L2 and empties it straight into
// the NCHW output: the valid columns of each row, or the max pool of the channel.
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "common/dispatch.h"
#include "common/threads.h"
#include "kiln/sparse-conv.h"
#include "kiln/thread-pool.h"
#include "sparse/sparse-conv-ukernel.h"

namespace kiln {

namespace {
// Input bytes one span of output rows may read: they are re-read by every chunk of groups.
constexpr size_t kSpanInputBytes = size_t{256} << 10;
// Bytes of kernel output per chunk of groups (read back right away by the copy or the pool; 4 to
// 64 KiB measured the same on SeedCNN's conv2).
constexpr size_t kBufferBytes = size_t{16} << 10;
// Below this many multiply-adds (stored values x positions) a run stays on the calling thread.
constexpr size_t kParallelMinWork = size_t{1} << 17;

size_t round16(size_t n) { return (n + 15) / 16 * 16; }
}  // namespace

// Output rows (pooled rows when pooling) per span, from the input and buffer budgets.
size_t SparseConvF32::spans_rows(const ConvMaxPool* pool) const {
  const size_t final_rows = pool ? pool->out_h : g_.out_height;
  const size_t row_bytes = wp_ * sizeof(float);
  const size_t reach = (g_.kernel_h - 1) * g_.dilation_h;
  const size_t by_input = kSpanInputBytes / (g_.in_channels * row_bytes);
  const size_t by_buffer = kBufferBytes / (br_ * row_bytes);
  const size_t conv_rows = std::max<size_t>(1, std::min(by_input > reach ? by_input - reach : 1, by_buffer));
  const size_t per_final = pool ? pool->stride_h : 1;
  return std::max<size_t>(1, std::min(final_rows, conv_rows / per_final));
}

// Floats of the kernel's output buffer of one slot: the largest span, for a chunk of groups.
size_t SparseConvF32::buffer_floats(const ConvMaxPool* pool) const {
  const size_t rows = spans_rows(pool);
  const size_t conv_rows = pool ? (rows - 1) * pool->stride_h + (pool->kernel_h - 1) * pool->dilation_h + 1 : rows;
  const size_t ldy = round16((conv_rows - 1) * wp_ + g_.out_width);
  const size_t groups = group_ptr_.size() - 1;
  const size_t chunk = std::max<size_t>(1, std::min(groups, kBufferBytes / (br_ * ldy * sizeof(float))));
  return chunk * br_ * ldy;
}

namespace {
size_t padded_floats(size_t channels, size_t hp, size_t wp, bool padded) {
  return padded ? round16(channels * hp * wp) : 0;
}
}  // namespace

size_t SparseConvF32::scratch_floats(size_t batch, size_t threads, const ConvMaxPool* pool) const {
  if (batch == 0) return 0;
  const size_t slot = padded_floats(g_.in_channels, hp_, wp_, padded_) + buffer_floats(pool);
  // Not capped at the pool size: a pool grown between sizing and running must not add slots.
  const size_t slots = threads == 0 ? num_threads() : threads;
  return std::max<size_t>(1, slots) * slot;
}

void SparseConvF32::run(const float* input, float* output, size_t batch, const ConvMaxPool* pool, float* scratch,
                        size_t max_threads) const {
  run(dispatch().f32_sparse_conv, input, output, batch, pool, scratch, max_threads);
}

void SparseConvF32::run(const F32SparseConvKernels& kern, const float* input, float* output, size_t batch,
                        const ConvMaxPool* pool, float* scratch, size_t max_threads) const {
  if (batch == 0) return;
  if (pool && (!conv_max_pool_valid(g_, *pool) || !pool->interior(g_.out_height, g_.out_width))) {
    throw std::invalid_argument("SparseConvF32: invalid max pool (its kernels take windows inside the output only)");
  }
  if (!input || !output || !scratch) throw std::invalid_argument("SparseConvF32: null buffer");
  const size_t groups = group_ptr_.size() - 1;
  const size_t in_image = g_.in_channels * g_.in_plane();
  const size_t out_image = g_.out_channels * (pool ? pool->out_h * pool->out_w : g_.out_plane());
  const size_t slot_floats = padded_floats(g_.in_channels, hp_, wp_, padded_) + buffer_floats(pool);
  size_t threads = std::max<size_t>(1, resolve_threads(max_threads));
  if ((values_.size() + groups * br_) * g_.out_plane() * batch < kParallelMinWork) threads = 1;
  // With fewer images than threads, each image's groups are split too (the padded copy is then
  // made once per task: cheap next to the convolution).
  const size_t ranges = batch >= threads ? 1 : std::min(groups, (2 * threads + batch - 1) / batch);
  const size_t per_range = (groups + ranges - 1) / ranges;
  const size_t used_ranges = (groups + per_range - 1) / per_range;
  auto task = [&](size_t t, size_t slot) {
    const size_t image = t / used_ranges, range = t % used_ranges;
    const size_t g0 = range * per_range, g1 = std::min(groups, g0 + per_range);
    run_task(kern, input + image * in_image, output + image * out_image, g0, g1, pool, scratch + slot * slot_floats);
  };
  const size_t tasks = batch * used_ranges;
  if (threads <= 1) {
    for (size_t t = 0; t < tasks; ++t) task(t, 0);
    return;
  }
  parallel_for_slots(tasks, task, threads);
}

void SparseConvF32::run_task(const F32SparseConvKernels& kern, const float* image, float* out_image, size_t g_begin,
                             size_t g_end, const ConvMaxPool* pool, float* slot_scratch) const {
  const Conv2dGeometry& g = g_;
  const float* base = image;
  float* buf = slot_scratch;
  if (padded_) {
    // The zero border is written with the image: the slot may have held another geometry's data.
    float* dst = slot_scratch;
    const size_t h = g.in_height, w = g.in_width;
    for (size_t c = 0; c < g.in_channels; ++c) {
      float* plane = dst + c * hp_ * wp_;
      std::memset(plane, 0, g.pad_top * wp_ * sizeof(float));
      for (size_t y = 0; y < h; ++y) {
        float* row = plane + (g.pad_top + y) * wp_;
        std::memset(row, 0, g.pad_left * sizeof(float));
        std::memcpy(row + g.pad_left, image + (c * h + y) * w, w * sizeof(float));
        std::memset(row + g.pad_left + w, 0, g.pad_right * sizeof(float));
      }
      std::memset(plane + (g.pad_top + h) * wp_, 0, g.pad_bottom * wp_ * sizeof(float));
    }
    base = dst;
    buf = slot_scratch + padded_floats(g.in_channels, hp_, wp_, true);
  }
  const size_t buf_floats = buffer_floats(pool);
  F32SparseConvArgs a;
  a.group_ptr = group_ptr_.data();
  a.offset = offset_.data();
  a.values = values_.data();
  a.bias = bias_.data();
  a.relu = relu_;
  a.y = buf;
  const F32SparseConvFn fn = kern.kernel[sparse_conv_kind(br_)];
  const size_t final_rows = pool ? pool->out_h : g.out_height;
  const size_t final_w = pool ? pool->out_w : g.out_width;
  const size_t final_plane = final_rows * final_w;
  const size_t span = spans_rows(pool);
  const size_t m = g.out_channels;
  for (size_t r0 = 0; r0 < final_rows; r0 += span) {
    const size_t r1 = std::min(final_rows, r0 + span);
    const size_t c0 = pool ? r0 * pool->stride_h : r0;
    const size_t c1 = pool ? (r1 - 1) * pool->stride_h + (pool->kernel_h - 1) * pool->dilation_h + 1 : r1;
    a.x = base + c0 * wp_;
    a.n = (c1 - c0 - 1) * wp_ + g.out_width;
    a.ldy = round16(a.n);
    const size_t chunk = std::max<size_t>(1, buf_floats / (br_ * a.ldy));
    for (size_t gc = g_begin; gc < g_end; gc += chunk) {
      a.g_begin = gc;
      a.g_end = std::min(g_end, gc + chunk);
      fn(a);
      const size_t ch0 = gc * br_, ch_end = std::min(m, a.g_end * br_);
      float* out = out_image + ch0 * final_plane + r0 * final_w;
      if (pool) {
        F32SparseConvPoolArgs pa;
        pa.x = buf;
        pa.ldx = a.ldy;
        pa.pitch = wp_;
        pa.channels = ch_end - ch0;
        pa.kernel_h = pool->kernel_h;
        pa.kernel_w = pool->kernel_w;
        pa.stride_h = pool->stride_h;
        pa.stride_w = pool->stride_w;
        pa.dilation_h = pool->dilation_h;
        pa.dilation_w = pool->dilation_w;
        pa.out_h = r1 - r0;
        pa.out_w = final_w;
        pa.y = out;
        pa.ldy = final_plane;
        kern.max_pool(pa);
        continue;
      }
      for (size_t ch = ch0; ch < ch_end; ++ch) {
        const float* plane = buf + (ch - ch0) * a.ldy;
        float* dst = out + (ch - ch0) * final_plane;
        for (size_t oy = r0; oy < r1; ++oy) std::memcpy(dst + (oy - r0) * final_w, plane + (oy - c0) * wp_, final_w * sizeof(float));
      }
    }
  }
}

}  // namespace kiln
