// Direct kernels for convolutions where every output channel reads a single input channel
// (Cin/groups == 1: depthwise, with any channel multiplier). A GEMM per group would be one row
// deep; these walk the planes directly instead.
//
// Forward, planar (NCHW in and out, as XNNPACK's CHW depthwise kernels): each input plane is
// copied once, zero-padded, into stride phases (phase (a, b) holds padded rows a, a + s_h, ... and
// columns b, b + s_w, ...), all with one row pitch Wq = OW + (KW - 1) * d_w / s_w. On that pitch
// output (oh, ow) at flat index oh * Wq + ow reads tap (kh, kw) at a constant offset of its phase
// plane, whatever the stride, padding or dilation, so the kernel is one loop of full vectors over
// the flat plane: no border cases, no masks, every lane a real or a discarded pitch column. Rows
// are then copied out at the output pitch. Small planes (7x7) stay vector-friendly this way, where
// a row-by-row kernel would leave most lanes of a 7-wide row idle.
#pragma once
#include <cstddef>

#include "kiln/conv.h"

namespace kiln {

struct DispatchTable;

inline bool is_depthwise(const Conv2dGeometry& g) { return g.groups > 1 && g.in_channels_per_group() == 1; }

// Floats past n that the taps kernel may read from each tap and write to out.
constexpr size_t kDepthwiseSlack = 64;

// Floats of scratch depthwise_forward needs per thread slot, and in all (kConvMaxSlots slots).
size_t depthwise_slot_floats(const Conv2dGeometry& g);
size_t depthwise_scratch_floats(const Conv2dGeometry& g);

// output = clamp(conv(input) + bias, lo, hi): bias nullable; lo = -inf, hi = +inf for no clamp,
// lo = 0 for ReLU (NaN passes through). `scratch` holds depthwise_scratch_floats(g). One task per
// output plane, so a single image spreads over the threads too.
void depthwise_forward(const DispatchTable& t, const Conv2dGeometry& g, size_t batch, const float* input,
                       const float* weight, const float* bias, float lo, float hi, float* output, float* scratch,
                       size_t max_threads);

// grad_input (nullable) and grad_weight (nullable), overwritten. grad_weight of each output
// channel is summed over the batch by one task in a fixed order.
void depthwise_backward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                        const float* grad_output, float* grad_input, float* grad_weight, size_t max_threads);

// The kernels of the dispatch table's f32_conv.depthwise (contracts in conv/conv-ukernel.h).
void f32_depthwise_taps_scalar(const float* const* taps, const float* w, size_t ntaps, float bias, float lo, float hi,
                               size_t n, float* out);
void f32_depthwise_taps_avx2(const float* const* taps, const float* w, size_t ntaps, float bias, float lo, float hi,
                             size_t n, float* out);
void f32_depthwise_taps_avx512(const float* const* taps, const float* w, size_t ntaps, float bias, float lo, float hi,
                               size_t n, float* out);
void f32_deinterleave2_scalar(const float* src, size_t pairs, float* even, float* odd);
void f32_deinterleave2_avx2(const float* src, size_t pairs, float* even, float* odd);
void f32_deinterleave2_avx512(const float* src, size_t pairs, float* even, float* odd);

}  // namespace kiln
