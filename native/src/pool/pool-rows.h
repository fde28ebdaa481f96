// The pool family's row kernels, one per ISA in the dispatch table (common/dispatch.h); the
// scalar ones (pool-rows-reference.cc) are the fallback and the oracle.
//
// max_2x2_row: one output row of a 2x2, stride-2, unpadded max pool: out[j] = max of the window over
// input rows `top` and `bottom` at columns 2j, 2j+1, and idx[j] (when idx is not null) its flat
// offset in the plane, `first` being the plane offset of top[0] and `width` the plane width.
// Ties keep the first tap in window order (top-left, top-right, bottom-left, bottom-right); a NaN
// takes over from a number, never the other way round.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

struct F32ChannelBlockArgs;

namespace {  // internal linkage: included by TUs built with different -m flags

// The first tap always wins (so an all -inf window still has a winner); after that a larger
// value, or the first NaN, takes over.
inline bool max_pool_takes_over(float v, float best) { return v > best || (v != v && best == best); }

}  // namespace

using F32MaxPool2x2RowFn = void (*)(const float* top, const float* bottom, size_t n, size_t first, size_t width,
                                    float* out, int32_t* idx);

// out[p] = the largest of taps[t][p] over t < ntaps (-inf when ntaps is 0), or NaN when any is
// NaN, for p < n: the planar max pool over stride-phase planes (conv/phase-planes.h). May read
// every tap and write out up to n rounded up to kPhaseSlack floats.
using F32MaxTapsFn = void (*)(const float* const* taps, size_t ntaps, size_t n, float* out);

// out[r * out_step + j] = (0.0f + t_0 + t_1 + ... + t_{ntaps-1}) / divisor, added in that order,
// where t_k = in[taps[k] + r * in_step + j * stride], for r < rows, j < n: a block of average-pool
// windows (the order is the scalar window loop's, so every path gives the same bits). Strides 1
// and 2 are vector loads; others a scalar loop. Reads no input but the taps.
using F32AvgRowsFn = void (*)(const float* in, const ptrdiff_t* taps, size_t ntaps, size_t in_step, size_t stride,
                              size_t n, size_t rows, float divisor, float* out, size_t out_step);

struct F32PoolKernels {
  F32MaxPool2x2RowFn max_2x2_row = nullptr;  // never null
  F32MaxTapsFn max_taps = nullptr;           // never null
  F32AvgRowsFn avg_rows = nullptr;           // never null
  // One block of `block_lanes` planes with channels in lanes (conv/channel-block-plan.h); false
  // when the block's input holds a NaN (nothing written: the planar kernel runs it). Null where
  // the ISA has none (scalar).
  bool (*max_channel_block)(const F32ChannelBlockArgs& a) = nullptr;
  size_t block_lanes = 0;
};

struct Pool2dGeometry;

// kiln/pool.h's max_pool2d_forward on the kernels of one table (a caller that read dispatch() once
// for a whole operation passes them down); the public overload reads the active table.
void max_pool2d_forward(const F32PoolKernels& k, const Pool2dGeometry& g, const float* input, float* output,
                        int32_t* indices, size_t max_threads);

void f32_maxpool2d_2x2_row_scalar(const float* top, const float* bottom, size_t n, size_t first, size_t width,
                                  float* out, int32_t* idx);
void f32_maxpool2d_2x2_row_avx2(const float* top, const float* bottom, size_t n, size_t first, size_t width,
                                float* out, int32_t* idx);
void f32_maxpool2d_2x2_row_avx512(const float* top, const float* bottom, size_t n, size_t first, size_t width,
                                  float* out, int32_t* idx);
void f32_avg_rows_scalar(const float* in, const ptrdiff_t* taps, size_t ntaps, size_t in_step, size_t stride, size_t n,
                          size_t rows, float divisor, float* out, size_t out_step);
void f32_avg_rows_avx2(const float* in, const ptrdiff_t* taps, size_t ntaps, size_t in_step, size_t stride, size_t n,
                        size_t rows, float divisor, float* out, size_t out_step);
void f32_avg_rows_avx512(const float* in, const ptrdiff_t* taps, size_t ntaps, size_t in_step, size_t stride, size_t n,
                          size_t rows, float divisor, float* out, size_t out_step);
void f32_max_taps_scalar(const float* const* taps, size_t ntaps, size_t n, float* out);
void f32_max_taps_avx2(const float* const* taps, size_t ntaps, size_t n, float* out);
void f32_max_taps_avx512(const float* const* taps, size_t ntaps, size_t n, float* out);

}  // namespace kiln
