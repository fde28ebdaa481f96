// The fp32 convolution kernels the dispatch table holds per ISA (common/dispatch.h). Entries a
// path does not have on an ISA are null: the small-patch kernels below AVX2, the channels-in-lanes
// direct kernels and Winograd below AVX-512. The plan checks the entry, never the ISA.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/conv.h"

namespace kiln {

struct SmallConvArgs;
struct DirectConvArgs;
struct WinogradArgs;
struct F32ChannelBlockArgs;

// Whole-plane im2col / col2im (conv/im2col.h); never null (scalar: conv/im2col-reference.cc).
using F32Im2colPlaneFn = void (*)(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld);
using F32Col2imPlaneAddFn = void (*)(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld,
                                     float* grad_input);

// One image of the small-patch direct convolution, plain or with the fused 2x2/2 max pool
// (conv/small-conv.h).
using F32SmallConvImageFn = void (*)(const SmallConvArgs& args, const float* input, float* output);
using F32SmallConvPoolImageFn = void (*)(const SmallConvArgs& args, const float* input, float* output,
                                         int32_t* indices);

// The channels-in-lanes direct convolution and its helpers (conv/direct-conv.h): all set or all null.
struct F32DirectConvKernels {
  void (*rows)(const DirectConvArgs& args, const float* input, size_t oh0, size_t oh1, size_t cols, float* rows) = nullptr;
  void (*nhwc_to_nchw)(const float* nhwc, size_t pixels, size_t channels, size_t cout_padded, float* out,
                       size_t plane_stride) = nullptr;
  void (*nchw_to_nhwc)(const float* nchw, size_t pixels, size_t channels, size_t cout_padded, float* nhwc) = nullptr;
  void (*max_pool_rows)(const float* rows, size_t row0, size_t row_end, size_t cols, size_t cout_padded,
                        const ConvMaxPool& pool, size_t y0, size_t y1, size_t plane_width, float* pooled,
                        int32_t* where) = nullptr;
  void (*column_sums)(const float* nhwc, size_t pixels, size_t cout_padded, double* sums) = nullptr;
  void (*weight_rows)(const float* x, const int32_t* offsets, size_t k0, size_t k1, const float* g, size_t ld,
                      size_t c0, size_t nb, size_t out_height, size_t out_width, size_t in_width, size_t stride_h,
                      bool first, float* partial) = nullptr;
};

// The depthwise convolution's kernels (conv/depthwise.h); taps and deinterleave2 never null (scalar:
// conv/depthwise-reference.cc).
struct F32DepthwiseKernels {
  // out[p] = clamp(bias + sum_t w[t] * taps[t][p], lo, hi) for p < n, the terms added in tap
  // order. May read every taps[t] and write out up to n rounded up to kPhaseSlack floats.
  void (*taps)(const float* const* taps, const float* w, size_t ntaps, float bias, float lo, float hi, size_t n,
               float* out) = nullptr;
  // Stride 1, undilated: out[p] = clamp(bias + sum over i < kh, j < kw of w[i * kw + j] *
  // base[p + i * pitch + j], lo, hi) for p < n; reads like `taps` (the same sum, in the same tap
  // order). Null where the ISA has no such kernel: `taps` then runs.
  void (*rows)(const float* base, size_t pitch, size_t kh, size_t kw, const float* w, float bias, float lo, float hi,
               size_t n, float* out) = nullptr;
  // even[j] = src[2j], odd[j] = src[2j + 1] for j < pairs: a stride-2 row split into its phases.
  void (*deinterleave2)(const float* src, size_t pairs, float* even, float* odd) = nullptr;
  // One block of `block_lanes` channels with channels in lanes (conv/channel-block-plan.h). Null
  // where the ISA has none (scalar): the planar kernels then run every depthwise convolution.
  void (*channel_block)(const F32ChannelBlockArgs& a) = nullptr;
  size_t block_lanes = 0;
  // Horizontal stride 2, undilated, kw 3, 5 or 7: for r < out_rows (1 or 2) and q < n,
  //   out[r * out_ld + q] = clamp(bias + sum over i < kh, j < kw of w[i * kw + j] * x(r, i, j, q), lo, hi),
  //   x(r, i, j, q) = rows[r * kh + i][(j odd ? odd_offset : 0) + q + j / 2],
  // each rows[] entry a zero-padded input row split into its even columns and, odd_offset floats
  // on, its odd ones. The terms are added in tap order (the taps kernel's sum, bit for bit). Reads
  // each phase up to n rounded up to 16 plus (kw - 1) / 2 floats; writes exactly n floats per row.
  // Null where the ISA has none: the channel blocks or the planar kernels then run.
  void (*stride2_rows)(const float* const* rows, size_t odd_offset, size_t kh, size_t kw, size_t out_rows,
                       const float* w, float bias, float lo, float hi, size_t n, float* out, size_t out_ld) = nullptr;
};

// One image of the Winograd convolution (conv/winograd.h).
using F32WinogradImageFn = bool (*)(const WinogradArgs& a, const float* image, float* out, float* scratch);

struct F32ConvKernels {
  F32Im2colPlaneFn im2col_plane = nullptr;
  F32Col2imPlaneAddFn col2im_plane_add = nullptr;
  // dst[i] = src[2i] for i < n, reading src[0, 2n - 1) only: the stride-2 row pieces of im2col's
  // column tiles. Never null (scalar: conv/im2col-reference.cc).
  void (*gather_even)(const float* src, size_t n, float* dst) = nullptr;
  F32SmallConvImageFn small_conv_image = nullptr;               // null: no small-patch kernel
  F32SmallConvPoolImageFn small_conv_max_pool_image = nullptr;  // set with small_conv_image
  F32DirectConvKernels direct;                                  // direct.rows null: no direct kernel
  F32WinogradImageFn winograd_image = nullptr;                  // null: no Winograd
  // One image split over threads (winograd.h): set with winograd_image.
  bool (*winograd_stage)(const WinogradArgs& a, const float* image, float* padded) = nullptr;
  void (*winograd_bands)(const WinogradArgs& a, const float* padded, float* out, float* band, size_t ty_begin,
                         size_t ty_end) = nullptr;
  // Several images as one band (winograd.h): set with winograd_image.
  void (*winograd_group)(const WinogradArgs& a, const float* input, size_t in_image, float* output, size_t out_image,
                         size_t count, float* scratch) = nullptr;
  F32DepthwiseKernels depthwise;                                // never null
};

}  // namespace kiln
