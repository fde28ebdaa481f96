// Direct kernels for convolutions where every output channel reads a single input channel
// (Cin/groups == 1: depthwise, with any channel multiplier). A GEMM per group would be one row
// deep; these walk the planes directly instead.
//
// Forward, planar (NCHW in and out, as XNNPACK's CHW depthwise kernels): each input plane is split
// once into zero-padded stride-phase planes (conv/phase-planes.h) on whose row pitch every tap of
// every output is a constant offset; the kernel is then one loop of full vectors over the flat
// plane, and the rows are copied out at the output pitch.
//
// Forward, stride-2 rows (wide planes at horizontal stride 2): each input row, as the output rows
// reach it, is split into its even and odd columns in a small ring of zero-padded row buffers;
// every tap of an output row is then one unaligned vector load from one of them, with no copy of
// the whole plane and no transposes. Forward, channel blocks: conv/channel-block-plan.h.
#pragma once
#include <cstddef>
#include <vector>

#include "conv/channel-block-plan.h"
#include "kiln/conv.h"

namespace kiln {

struct DispatchTable;

inline bool is_depthwise(const Conv2dGeometry& g) { return g.groups > 1 && g.in_channels_per_group() == 1; }

// Floats of scratch depthwise_forward needs: kConvMaxSlots slots of phase planes or of a channel
// block's buffer, whichever is larger.
size_t depthwise_scratch_floats(const Conv2dGeometry& g);

// Whether the channel-block kernel can run g on table t (multiplier 1, at most 64 taps, at least
// one output row's padded input in a 256 KiB buffer: larger planes run in bands of output rows).
bool depthwise_channel_blocks_fit(const DispatchTable& t, const Conv2dGeometry& g);
// Whether the stride-2 rows can run g on table t (AVX2 and up; horizontal stride 2, undilated,
// 3, 5 or 7 wide, at most 16 high).
bool depthwise_stride2_rows_fit(const DispatchTable& t, const Conv2dGeometry& g);
// The path kAuto takes for g on table t: the stride-2 rows from 48 output columns up, else the
// channel blocks where they fit, else planar.
WindowPath depthwise_auto_path(const DispatchTable& t, const Conv2dGeometry& g);

// output = post(clamp(conv(input) + bias, lo, hi)): bias nullable; lo = -inf, hi = +inf for no
// clamp, lo = 0 for ReLU (NaN passes through); post (Conv2dPlan::fuse_post's function, none when
// its fn is null) runs on each plane, or each band of a channel block's planes, as soon as it is
// written, while it is in cache. `scratch` holds depthwise_scratch_floats(g). Tasks of a few
// planes (planar, stride-2 rows) or one channel block, so a single image spreads over the threads
// too. All paths give the same bits: each sums the bias and the taps in tap order with fused
// multiply-adds (the scalar table's planar kernel multiplies and adds separately). A forced path
// that does not fit runs as kAuto would, without that path (kStride2Rows: the channel blocks or
// planar; kChannelBlocks: planar).
// `block_weights` (nullable): depthwise_block_weights(g, weight, bias, t's block_lanes), made once
// by the caller; without it each channel-block task packs its block's weights itself.
void depthwise_forward(const DispatchTable& t, const Conv2dGeometry& g, size_t batch, const float* input,
                       const float* weight, const float* bias, float lo, float hi, float* output, float* scratch,
                       size_t max_threads, Conv2dPlan::PostOp post = {}, WindowPath path = WindowPath::kAuto,
                       const float* block_weights = nullptr);

// The channel blocks' weights of g (multiplier 1) for `lanes`-wide kernels: per block of `lanes`
// channels, each tap's `lanes` weights, then the `lanes` biases, zero past the last channel.
std::vector<float> depthwise_block_weights(const Conv2dGeometry& g, const float* weight, const float* bias, size_t lanes);

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
// AVX-512: each input row loaded once per block of outputs, its shifts by 1..kw-1 made in
// registers (valignd) instead of kw unaligned loads.
void f32_depthwise_rows_avx512(const float* base, size_t pitch, size_t kh, size_t kw, const float* w, float bias,
                               float lo, float hi, size_t n, float* out);
// Stride-2 rows (conv-ukernel.h's stride2_rows): every tap one unaligned load from a row's even or
// odd columns, one or two output rows per pass.
void f32_depthwise_stride2_rows_avx2(const float* const* rows, size_t odd_offset, size_t kh, size_t kw,
                                     size_t out_rows, const float* w, float bias, float lo, float hi, size_t n,
                                     float* out, size_t out_ld);
void f32_depthwise_stride2_rows_avx512(const float* const* rows, size_t odd_offset, size_t kh, size_t kw,
                                       size_t out_rows, const float* w, float bias, float lo, float hi, size_t n,
                                       float* out, size_t out_ld);
void f32_deinterleave2_scalar(const float* src, size_t pairs, float* even, float* odd);
void f32_deinterleave2_avx2(const float* src, size_t pairs, float* even, float* odd);
void f32_deinterleave2_avx512(const float* src, size_t pairs, float* even, float* odd);

}  // namespace kiln
