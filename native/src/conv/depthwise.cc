#include "conv/depthwise.h"

#include <algorithm>
#include <array>
#include <vector>

#include "common/dispatch.h"
#include "conv/channel-block-plan.h"
#include "conv/conv-ukernel.h"
#include "conv/conv2d-tiling.h"
#include "conv/im2col-plane.h"
#include "conv/phase-planes.h"
#include "kiln/thread-pool.h"

namespace kiln {
namespace {

// Planes per task: enough multiply-adds (~64K) to outweigh handing the task out.
size_t planes_per_task(const Conv2dGeometry& g) {
  const size_t work = std::max<size_t>(1, g.out_plane() * g.kernel_h * g.kernel_w);
  return std::max<size_t>(1, (64 * 1024) / work);
}

// The forward pass's tasks over input planes (planar and stride-2 rows): an input plane feeds m
// output planes, so it is read once for all of them; tasks of a few planes when planes are small
// (7x7 late layers), so handing out a task costs little beside its work.
struct PlaneTasks {
  size_t planes = 0, per_task = 0, count = 0, threads = 0;
  size_t begin(size_t task) const { return task * per_task; }
  size_t end(size_t task) const { return std::min(planes, (task + 1) * per_task); }
};

PlaneTasks forward_plane_tasks(const Conv2dGeometry& g, size_t batch, size_t max_threads) {
  PlaneTasks t;
  t.planes = batch * g.in_channels;
  const size_t work = g.out_plane() * g.kernel_h * g.kernel_w * g.out_channels_per_group();
  t.per_task = std::max<size_t>(1, (16 * 1024) / std::max<size_t>(1, work));
  t.count = (t.planes + t.per_task - 1) / t.per_task;
  t.threads = std::min({max_threads == 0 ? num_threads() : max_threads, kConvMaxSlots, t.count});
  return t;
}

// For each kernel column kw: the output columns whose tap lies inside the input row, and the
// input column of output column 0 (ow * stride_w + offset).
struct Taps {
  std::vector<ColumnSpan> span;
  std::vector<ptrdiff_t> offset;
};

Taps column_taps(const Conv2dGeometry& g) {
  Taps t;
  for (size_t kw = 0; kw < g.kernel_w; ++kw) {
    const ptrdiff_t dw = static_cast<ptrdiff_t>(kw * g.dilation_w) - static_cast<ptrdiff_t>(g.pad_left);
    t.offset.push_back(dw);
    t.span.push_back(valid_columns(dw, g.stride_w, g.in_width, g.out_width));
  }
  return t;
}

// Input row under output row oh and kernel row kh, or -1 in padding.
ptrdiff_t input_row(const Conv2dGeometry& g, size_t oh, size_t kh) {
  const ptrdiff_t ih = static_cast<ptrdiff_t>(oh * g.stride_h + kh * g.dilation_h) - static_cast<ptrdiff_t>(g.pad_top);
  return ih >= 0 && ih < static_cast<ptrdiff_t>(g.in_height) ? ih : -1;
}

// The channel blocks take g's geometry (multiplier 1, a window the buffer holds)...
bool blocks_take(const Conv2dGeometry& g, const ChannelBlockPlan& plan) {
  return g.out_channels_per_group() == 1 && g.out_plane() > 0 && plan.fits();
}

// ... and kernels k have them.
bool blocks_fit(const F32DepthwiseKernels& k, const Conv2dGeometry& g, const ChannelBlockPlan& plan) {
  return k.channel_block != nullptr && k.block_lanes <= ChannelBlockPlan::kMaxLanes && blocks_take(g, plan);
}

bool prefers_blocks(const F32DepthwiseKernels& k, const Conv2dGeometry& g, const ChannelBlockPlan& plan) {
  // Measured at least as fast as planar on every depthwise layer of MobileNetV2/V3 and
  // EfficientNet-B0 (AVX-512, 1 thread): equal on 112x112 and 56x56 stride 1, 1.7x at 112x112
  // stride 2, 2-5x on 14x14 and 7x7 planes and at stride 2.
  return blocks_fit(k, g, plan);
}

// Floats of one slot of channel blocks: the buffer, then the block's weights (lanes per tap) and bias.
size_t block_slot_floats(const ChannelBlockPlan& plan, size_t lanes) {
  return plan.buffer_floats(lanes) + (plan.taps() + 1) * lanes;
}

// Block [c0, c0 + channels)'s weights, tap by tap, then its biases, `lanes` floats each (zero past
// `channels`): (taps + 1) * lanes floats at out.
void pack_block(const float* weight, const float* bias, size_t taps, size_t lanes, size_t c0, size_t channels, float* out) {
  std::fill(out, out + (taps + 1) * lanes, 0.0f);
  for (size_t c = 0; c < channels; ++c) {
    for (size_t t = 0; t < taps; ++t) out[t * lanes + c] = weight[(c0 + c) * taps + t];
    if (bias != nullptr) out[taps * lanes + c] = bias[c0 + c];
  }
}

void channel_blocks_forward(const F32DepthwiseKernels& k, const Conv2dGeometry& g, const ChannelBlockPlan& plan,
                            size_t batch, const float* input, const float* weight, const float* bias,
                            const float* block_weights, float lo, float hi, const Conv2dPlan::PostOp& post,
                            float* output, float* scratch, size_t max_threads) {
  const size_t lanes = k.block_lanes;
  const size_t slot_floats = block_slot_floats(plan, lanes);  // within depthwise_scratch_floats' slots
  const size_t taps = plan.taps();
  const size_t blocks = (g.in_channels + lanes - 1) / lanes;
  const size_t tasks = batch * blocks;
  const size_t threads = std::min({max_threads == 0 ? num_threads() : max_threads, kConvMaxSlots, tasks});
  // The buffer's zero border is the same for every block when the plane is one band: a slot
  // fills it once (with the weights packed per task, these fills cost as much as the outputs of
  // a 7x7 plane: EfficientNet's 1152-channel 5x5 at batch 16). Tasks go image by image, as the
  // steps around them do: block by block through the batch, EfficientNet at batch 16 on two
  // threads ran 6% slower.
  std::array<bool, kConvMaxSlots> bordered{};
  parallel_for_slots(
      tasks,
      [&](size_t task, size_t slot) {
        float* s = scratch + slot * slot_floats;
        const size_t n = task / blocks, block = task % blocks, c0 = block * lanes;
        const size_t channels = std::min(lanes, g.in_channels - c0);
        const float* w = nullptr;
        if (block_weights != nullptr) {
          w = block_weights + block * (taps + 1) * lanes;
        } else {
          float* packed = s + plan.buffer_floats(lanes);
          pack_block(weight, bias, taps, lanes, c0, channels, packed);
          w = packed;
        }
        F32ChannelBlockArgs a;
        a.channels = channels;
        a.weight = w;
        a.bias = w + taps * lanes;
        a.lo = lo;
        a.hi = hi;
        plan.run_bands(a, lanes, input + (n * g.in_channels + c0) * g.in_plane(),
                       output + (n * g.out_channels + c0) * g.out_plane(), 0.0f, s, [&](const F32ChannelBlockArgs& args) {
                         k.channel_block(args);
                         // The band's rows of each plane, just transposed out: still in cache.
                         post.apply(args.output, args.out_h * args.out_w, args.channels, args.out_stride);
                         return true;
                       }, bordered[slot]);
        bordered[slot] = true;
      },
      threads);
}

// The stride-2 rows path. Each input plane's rows, as the output rows reach them, are split into
// their even and odd columns with the padding as zeros, in a ring of row buffers; every tap of an
// output row is then one unaligned vector load from one of them, and two output rows run per
// kernel pass (with one, a 28-wide row's chain of nine FMAs per vector set the pace). Against the
// channel blocks it skips both transposes, which at stride 2 move four input pixels per output.
// MobileNetV2's 96-channel 112 -> 56 layer in the model, AVX-512, 1 thread, three alternated runs
// (ms): batch 1 0.277 / 0.231 / 0.233 -> 0.213 / 0.202 / 0.222, batch 16 6.72 / 6.62 / 6.66 ->
// 4.61 / 5.50 / 4.94. Alone, on 56 -> 28 the two were even (144 channels: 0.098 / 0.099 ms at
// batch 1), and on 28 -> 14 and 14 -> 7 the blocks won by 1.4-3x (short rows leave lanes idle).
// So kAuto takes it from 48 output columns up.
constexpr size_t kStride2MinWidth = 48;
constexpr size_t kStride2MaxKernelH = 16;
constexpr size_t kStride2MaxRing = 2 * kStride2MaxKernelH + 2;
constexpr size_t kPrefetchRows = 16;

struct Stride2Layout {
  size_t phase_floats = 0;  // one phase of one row buffer, whole vectors
  size_t ring = 0;          // row buffers: every input row that two consecutive output rows read
  size_t row_floats() const { return 2 * phase_floats; }
  // The ring, then a row of zeros (rows in the vertical padding).
  size_t slot_floats() const { return (ring + 1) * row_floats(); }
};

Stride2Layout stride2_layout(const Conv2dGeometry& g) {
  Stride2Layout l;
  // The kernel reads up to n rounded up to 16 plus (kw - 1) / 2; the split writes up to
  // pad_left / 2 + in_width / 2 + 1.
  const size_t reads = (g.out_width + 15) / 16 * 16 + (g.kernel_w - 1) / 2;
  const size_t writes = g.pad_left / 2 + g.in_width / 2 + 2;
  l.phase_floats = (std::max(reads, writes) + 15) / 16 * 16;
  l.ring = g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1;
  return l;
}

// The geometries the path takes on an ISA that has the kernel.
bool stride2_geometry_fits(const Conv2dGeometry& g) {
  const bool kw_ok = g.kernel_w == 3 || g.kernel_w == 5 || g.kernel_w == 7;
  return g.stride_w == 2 && g.dilation_w == 1 && kw_ok && g.kernel_h <= kStride2MaxKernelH &&
         stride2_layout(g).ring <= kStride2MaxRing && g.out_plane() > 0 && g.in_plane() > 0;
}

bool stride2_takes(const F32DepthwiseKernels& k, const Conv2dGeometry& g) {
  return k.stride2_rows != nullptr && stride2_geometry_fits(g);
}

bool prefers_stride2(const F32DepthwiseKernels& k, const Conv2dGeometry& g) {
  return stride2_takes(k, g) && g.out_width >= kStride2MinWidth;
}

// Input row x (`width` floats) into a row buffer's phases: padded column c = pad + col goes to
// even[c / 2] or odd[c / 2]. The buffer's other floats stay as they are (zero).
void split_row(const F32DepthwiseKernels& k, const float* x, size_t width, size_t pad, float* even, float* odd) {
  const size_t pairs = width / 2;
  if (pad % 2 == 0) {
    k.deinterleave2(x, pairs, even + pad / 2, odd + pad / 2);
    if (width % 2 != 0) even[pad / 2 + pairs] = x[width - 1];
  } else {
    k.deinterleave2(x, pairs, odd + pad / 2, even + pad / 2 + 1);
    if (width % 2 != 0) odd[pad / 2 + pairs] = x[width - 1];
  }
}

void stride2_rows_forward(const F32DepthwiseKernels& k, const Conv2dGeometry& g, size_t batch, const float* input,
                          const float* weight, const float* bias, float lo, float hi, const Conv2dPlan::PostOp& post,
                          float* output, float* scratch, size_t max_threads) {
  const Stride2Layout l = stride2_layout(g);
  const size_t m = g.out_channels_per_group();
  const size_t kh = g.kernel_h, taps = g.kernel_h * g.kernel_w;
  const PlaneTasks tasks = forward_plane_tasks(g, batch, max_threads);
  parallel_for_slots(
      tasks.count,
      [&](size_t task, size_t slot) {
        float* ring = scratch + slot * l.slot_floats();
        const float* zero = ring + l.ring * l.row_floats();
        // Zero once: every row split writes the same columns, so the padding stays zero.
        std::fill(ring, ring + l.slot_floats(), 0.0f);
        std::array<ptrdiff_t, kStride2MaxRing> held;  // the input row in each ring buffer
        std::array<const float*, 2 * kStride2MaxKernelH> rows;
        for (size_t p = tasks.begin(task); p < tasks.end(task); ++p) {
          held.fill(-1);
          const float* x = input + p * g.in_plane();
          const size_t n = p / g.in_channels, c = p % g.in_channels;
          for (size_t oh = 0; oh < g.out_height; oh += 2) {
            const size_t out_rows = std::min<size_t>(2, g.out_height - oh);
            for (size_t r = 0; r < out_rows; ++r) {
              for (size_t i = 0; i < kh; ++i) {
                const ptrdiff_t ih = input_row(g, oh + r, i);
                if (ih < 0) {
                  rows[r * kh + i] = zero;
                  continue;
                }
                // The rows of two output rows span at most `ring` consecutive input rows, so
                // they land in distinct buffers.
                const size_t b = static_cast<size_t>(ih) % l.ring;
                float* row = ring + b * l.row_floats();
                if (held[b] != ih) {
                  // The row kPrefetchRows on (into the next plane past the end): one plane
                  // read row by row is one stream, and at batch 16 it comes from memory, where
                  // MobileNetV2's 112 -> 56 layer took 6.2-7.2 ms at batch 16 without the
                  // prefetch; 8 rows on, 4.5-4.6 in one series and 6.2-6.8 in the next, where
                  // 16 rows on took 4.6-5.5 (and less at batch 1 too).
                  const size_t ahead_row = p * g.in_height + static_cast<size_t>(ih) + kPrefetchRows;
                  if (ahead_row < tasks.planes * g.in_height) {
                    const char* ahead = reinterpret_cast<const char*>(input + ahead_row * g.in_width);
                    for (size_t off = 0; off < g.in_width * sizeof(float); off += 64) __builtin_prefetch(ahead + off);
                  }
                  split_row(k, x + static_cast<size_t>(ih) * g.in_width, g.in_width, g.pad_left, row,
                            row + l.phase_floats);
                  held[b] = ih;
                }
                rows[r * kh + i] = row;
              }
            }
            for (size_t j = 0; j < m; ++j) {
              const size_t o = c * m + j;
              float* plane = output + (n * g.out_channels + o) * g.out_plane();
              k.stride2_rows(rows.data(), l.phase_floats, kh, g.kernel_w, out_rows, weight + o * taps,
                             bias != nullptr ? bias[o] : 0.0f, lo, hi, g.out_width, plane + oh * g.out_width,
                             g.out_width);
            }
          }
          for (size_t j = 0; j < m; ++j) {
            post.apply(output + (n * g.out_channels + c * m + j) * g.out_plane(), g.out_plane());
          }
        }
      },
      tasks.threads);
}

}  // namespace

size_t depthwise_scratch_floats(const Conv2dGeometry& g) {
  const PlanarWindow w = planar_window(g);
  const ChannelBlockPlan plan(w);
  const size_t blocks = blocks_take(g, plan) ? block_slot_floats(plan, ChannelBlockPlan::kMaxLanes) : 0;
  // Whatever the ISA: a plan's scratch is sized before the table it runs on is known.
  const size_t rows = stride2_geometry_fits(g) ? stride2_layout(g).slot_floats() : 0;
  return kConvMaxSlots * std::max({PhasePlanes(w).slot_floats(), blocks, rows});
}

bool depthwise_channel_blocks_fit(const DispatchTable& t, const Conv2dGeometry& g) {
  return blocks_fit(t.f32_conv.depthwise, g, ChannelBlockPlan(planar_window(g)));
}

bool depthwise_stride2_rows_fit(const DispatchTable& t, const Conv2dGeometry& g) {
  return stride2_takes(t.f32_conv.depthwise, g);
}

WindowPath depthwise_auto_path(const DispatchTable& t, const Conv2dGeometry& g) {
  const F32DepthwiseKernels& k = t.f32_conv.depthwise;
  if (prefers_stride2(k, g)) return WindowPath::kStride2Rows;
  return prefers_blocks(k, g, ChannelBlockPlan(planar_window(g))) ? WindowPath::kChannelBlocks : WindowPath::kPlanar;
}

std::vector<float> depthwise_block_weights(const Conv2dGeometry& g, const float* weight, const float* bias, size_t lanes) {
  const size_t taps = g.kernel_h * g.kernel_w, blocks = (g.in_channels + lanes - 1) / lanes;
  std::vector<float> out(blocks * (taps + 1) * lanes);
  for (size_t b = 0; b < blocks; ++b) {
    pack_block(weight, bias, taps, lanes, b * lanes, std::min(lanes, g.in_channels - b * lanes), out.data() + b * (taps + 1) * lanes);
  }
  return out;
}

void depthwise_forward(const DispatchTable& t, const Conv2dGeometry& g, size_t batch, const float* input,
                       const float* weight, const float* bias, float lo, float hi, float* output, float* scratch,
                       size_t max_threads, Conv2dPlan::PostOp post, WindowPath path, const float* block_weights) {
  const F32DepthwiseKernels& k = t.f32_conv.depthwise;
  if (path == WindowPath::kStride2Rows ? stride2_takes(k, g) : path == WindowPath::kAuto && prefers_stride2(k, g)) {
    stride2_rows_forward(k, g, batch, input, weight, bias, lo, hi, post, output, scratch, max_threads);
    return;
  }
  if (path != WindowPath::kPlanar && k.channel_block != nullptr) {
    // One plan for the choice and the run.
    const ChannelBlockPlan plan(planar_window(g));
    if (path == WindowPath::kChannelBlocks ? blocks_fit(k, g, plan) : prefers_blocks(k, g, plan)) {
      channel_blocks_forward(k, g, plan, batch, input, weight, bias, block_weights, lo, hi, post, output, scratch,
                             max_threads);
      return;
    }
  }
  const PhasePlanes layout(planar_window(g));
  const size_t m = g.out_channels_per_group();
  const size_t taps = g.kernel_h * g.kernel_w;
  const size_t slot_floats = layout.slot_floats();
  // Each input plane split once for its m output planes.
  const PlaneTasks tasks = forward_plane_tasks(g, batch, max_threads);
  // Stride 1, undilated: every tap row is one run of the single phase plane.
  const bool by_rows = k.rows != nullptr && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1;
  parallel_for_slots(
      tasks.count,
      [&](size_t task, size_t slot) {
        float* phases = scratch + slot * slot_floats;
        float* flat = layout.flat(phases);
        const float* on_stack[64];
        std::vector<const float*> on_heap(taps > 64 ? taps : 0);
        const float** tap_ptr = taps > 64 ? on_heap.data() : on_stack;
        for (size_t p = tasks.begin(task); p < tasks.end(task); ++p) {
          layout.split(k, input + p * g.in_plane(), 0.0f, phases, tap_ptr);
          const size_t n = p / g.in_channels, c = p % g.in_channels;
          for (size_t j = 0; j < m; ++j) {
            const size_t o = c * m + j;
            const float b = bias != nullptr ? bias[o] : 0.0f;
            if (by_rows) {
              k.rows(tap_ptr[0], layout.pitch(), g.kernel_h, g.kernel_w, weight + o * taps, b, lo, hi,
                     layout.flat_outputs(), flat);
            } else {
              k.taps(tap_ptr, weight + o * taps, taps, b, lo, hi, layout.flat_outputs(), flat);
            }
            float* plane = output + (n * g.out_channels + o) * g.out_plane();
            layout.copy_out(flat, plane);
            post.apply(plane, g.out_plane());
          }
        }
      },
      tasks.threads);
}

void depthwise_backward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                        const float* grad_output, float* grad_input, float* grad_weight, size_t max_threads) {
  const size_t m = g.out_channels_per_group();
  const size_t taps = g.kernel_h * g.kernel_w;
  const Taps cols = column_taps(g);
  const size_t sw = g.stride_w;

  if (grad_weight != nullptr) {
    // One output channel per task: its taps summed over images and rows in a fixed order.
    parallel_for(
        g.out_channels,
        [&](size_t o) {
          std::vector<double> acc(taps, 0.0);
          for (size_t n = 0; n < batch; ++n) {
            const float* x = input + (n * g.in_channels + o / m) * g.in_plane();
            const float* dy = grad_output + (n * g.out_channels + o) * g.out_plane();
            for (size_t oh = 0; oh < g.out_height; ++oh) {
              const float* dyrow = dy + oh * g.out_width;
              for (size_t kh = 0; kh < g.kernel_h; ++kh) {
                const ptrdiff_t ih = input_row(g, oh, kh);
                if (ih < 0) continue;
                const float* xrow = x + static_cast<size_t>(ih) * g.in_width;
                for (size_t kw = 0; kw < g.kernel_w; ++kw) {
                  const ColumnSpan s = cols.span[kw];
                  float dot = 0.0f;
                  for (size_t ow = s.lo; ow < s.hi; ++ow) dot += dyrow[ow] * xrow[cols.offset[kw] + static_cast<ptrdiff_t>(ow * sw)];
                  acc[kh * g.kernel_w + kw] += dot;
                }
              }
            }
          }
          for (size_t k = 0; k < taps; ++k) grad_weight[o * taps + k] = static_cast<float>(acc[k]);
        },
        max_threads);
  }

  if (grad_input != nullptr) {
    // One input plane per task: zeroed, then each of its m output channels scattered back.
    const size_t planes = batch * g.in_channels;
    const size_t per_task = std::max<size_t>(1, planes_per_task(g) / m);
    parallel_for(
        (planes + per_task - 1) / per_task,
        [&](size_t task) {
          const size_t end = std::min(planes, (task + 1) * per_task);
          for (size_t p = task * per_task; p < end; ++p) {
            const size_t n = p / g.in_channels, c = p % g.in_channels;
            float* dx = grad_input + p * g.in_plane();
            std::fill(dx, dx + g.in_plane(), 0.0f);
            for (size_t j = 0; j < m; ++j) {
              const size_t o = c * m + j;
              const float* w = weight + o * taps;
              const float* dy = grad_output + (n * g.out_channels + o) * g.out_plane();
              for (size_t oh = 0; oh < g.out_height; ++oh) {
                const float* dyrow = dy + oh * g.out_width;
                for (size_t kh = 0; kh < g.kernel_h; ++kh) {
                  const ptrdiff_t ih = input_row(g, oh, kh);
                  if (ih < 0) continue;
                  float* dxrow = dx + static_cast<size_t>(ih) * g.in_width;
                  for (size_t kw = 0; kw < g.kernel_w; ++kw) {
                    const ColumnSpan s = cols.span[kw];
                    const float wv = w[kh * g.kernel_w + kw];
                    for (size_t ow = s.lo; ow < s.hi; ++ow) dxrow[cols.offset[kw] + static_cast<ptrdiff_t>(ow * sw)] += wv * dyrow[ow];
                  }
                }
              }
            }
          }
        },
        max_threads);
  }
}

}  // namespace kiln
