#include "conv/depthwise.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/dispatch.h"
#include "conv/conv-ukernel.h"
#include "conv/conv2d-tiling.h"
#include "conv/im2col-plane.h"
#include "kiln/thread-pool.h"

namespace kiln {
namespace {

// Planes per task: enough multiply-adds (~64K) to outweigh handing the task out.
size_t planes_per_task(const Conv2dGeometry& g) {
  const size_t work = std::max<size_t>(1, g.out_plane() * g.kernel_h * g.kernel_w);
  return std::max<size_t>(1, (64 * 1024) / work);
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

// Where depthwise_forward puts things for one geometry (see conv/depthwise.h).
struct PhaseLayout {
  size_t phases_h, phases_w;  // the strides: one phase plane per (row, column) residue
  size_t rows, pitch;         // of each phase plane: Hq and Wq
  size_t phase_floats;        // one phase plane and its slack
  size_t out_floats;          // the flat output (OH x Wq) and its slack
  size_t row_floats;          // one padded input row before its column phases are split
  std::vector<size_t> tap_phase, tap_offset;  // per tap (kh, kw): its phase plane and offset in it

  explicit PhaseLayout(const Conv2dGeometry& g)
      : phases_h(g.stride_h),
        phases_w(g.stride_w),
        rows(g.out_height + (g.kernel_h - 1) * g.dilation_h / g.stride_h),
        pitch(g.out_width + (g.kernel_w - 1) * g.dilation_w / g.stride_w),
        phase_floats(rows * pitch + kDepthwiseSlack),
        out_floats(g.out_height * pitch + kDepthwiseSlack),
        row_floats(pitch * g.stride_w + kDepthwiseSlack) {
    for (size_t kh = 0; kh < g.kernel_h; ++kh) {
      for (size_t kw = 0; kw < g.kernel_w; ++kw) {
        const size_t dh = kh * g.dilation_h, dw = kw * g.dilation_w;
        tap_phase.push_back((dh % g.stride_h) * phases_w + dw % g.stride_w);
        tap_offset.push_back(dh / g.stride_h * pitch + dw / g.stride_w);
      }
    }
  }
  size_t slot_floats() const { return phases_h * phases_w * phase_floats + out_floats + row_floats; }
};

// Padded input row ih (all zeros when it lies in the padding) as `pitch * stride_w` columns from
// padded column 0.
void padded_row(const Conv2dGeometry& g, const float* x, ptrdiff_t ih, size_t columns, float* row) {
  std::fill(row, row + columns, 0.0f);
  if (ih < 0 || ih >= static_cast<ptrdiff_t>(g.in_height) || g.pad_left >= columns) return;
  const size_t n = std::min(g.in_width, columns - g.pad_left);
  std::memcpy(row + g.pad_left, x + static_cast<size_t>(ih) * g.in_width, n * sizeof(float));
}

// The phase planes of input plane x (conv/depthwise.h), slack zeroed.
void split_phases(const F32DepthwiseKernels& k, const Conv2dGeometry& g, const PhaseLayout& l, const float* x,
                  float* phases, float* row) {
  const size_t columns = l.pitch * l.phases_w;
  for (size_t a = 0; a < l.phases_h; ++a) {
    for (size_t i = 0; i < l.rows; ++i) {
      const ptrdiff_t ih = static_cast<ptrdiff_t>(i * g.stride_h + a) - static_cast<ptrdiff_t>(g.pad_top);
      float* dst = phases + a * l.phases_w * l.phase_floats + i * l.pitch;
      if (l.phases_w == 1) {
        padded_row(g, x, ih, columns, dst);
        continue;
      }
      padded_row(g, x, ih, columns, row);
      if (l.phases_w == 2) {
        k.deinterleave2(row, l.pitch, dst, dst + l.phase_floats);
        continue;
      }
      for (size_t b = 0; b < l.phases_w; ++b) {
        float* phase_row = dst + b * l.phase_floats;
        for (size_t j = 0; j < l.pitch; ++j) phase_row[j] = row[j * l.phases_w + b];
      }
    }
  }
  for (size_t p = 0; p < l.phases_h * l.phases_w; ++p) {
    float* slack = phases + p * l.phase_floats + l.rows * l.pitch;
    std::fill(slack, slack + kDepthwiseSlack, 0.0f);
  }
}

}  // namespace

size_t depthwise_slot_floats(const Conv2dGeometry& g) { return PhaseLayout(g).slot_floats(); }

size_t depthwise_scratch_floats(const Conv2dGeometry& g) { return kConvMaxSlots * depthwise_slot_floats(g); }

void depthwise_forward(const DispatchTable& t, const Conv2dGeometry& g, size_t batch, const float* input,
                       const float* weight, const float* bias, float lo, float hi, float* output, float* scratch,
                       size_t max_threads) {
  const F32DepthwiseKernels& k = t.f32_conv.depthwise;
  const PhaseLayout l(g);
  const size_t m = g.out_channels_per_group();
  const size_t taps = g.kernel_h * g.kernel_w;
  const size_t planes = batch * g.out_channels;
  const size_t slot_floats = l.slot_floats();
  const size_t threads = std::min({max_threads == 0 ? num_threads() : max_threads, kConvMaxSlots, planes});
  // An input plane feeds m output planes: split it once for all of them. Tasks of a few planes
  // when planes are small (7x7 late layers), so handing out a task costs little beside its work.
  const size_t inputs = batch * g.in_channels;
  const size_t per_task = std::max<size_t>(1, (16 * 1024) / std::max<size_t>(1, g.out_plane() * taps * m));
  parallel_for_slots(
      (inputs + per_task - 1) / per_task,
      [&](size_t task, size_t slot) {
        float* phases = scratch + slot * slot_floats;
        float* flat = phases + l.phases_h * l.phases_w * l.phase_floats;
        float* row = flat + l.out_floats;
        const float* on_stack[64];
        std::vector<const float*> on_heap(taps > 64 ? taps : 0);
        const float** tap_ptr = taps > 64 ? on_heap.data() : on_stack;
        for (size_t i = 0; i < taps; ++i) tap_ptr[i] = phases + l.tap_phase[i] * l.phase_floats + l.tap_offset[i];
        for (size_t p = task * per_task; p < std::min(inputs, (task + 1) * per_task); ++p) {
          split_phases(k, g, l, input + p * g.in_plane(), phases, row);
          const size_t n = p / g.in_channels, c = p % g.in_channels;
          for (size_t j = 0; j < m; ++j) {
            const size_t o = c * m + j;
            k.taps(tap_ptr, weight + o * taps, taps, bias != nullptr ? bias[o] : 0.0f, lo, hi,
                   g.out_height * l.pitch, flat);
            float* y = output + (n * g.out_channels + o) * g.out_plane();
            for (size_t oh = 0; oh < g.out_height; ++oh) {
              std::memcpy(y + oh * g.out_width, flat + oh * l.pitch, g.out_width * sizeof(float));
            }
          }
        }
      },
      threads);
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
