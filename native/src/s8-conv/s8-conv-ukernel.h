// The int8 convolution family's kernels the dispatch table holds per ISA (common/dispatch.h):
// the quantize / dequantize rows of the layout conversions, the QLinearAdd rows, the byte
// transpose, the uint8 max-pool run, the int8
// depthwise accumulation and the small-conv + pool kernel. The scalar entries
// (s8-conv-reference.cc) are the fallback and the tests' oracle; the small-conv + pool kernel
// exists on AVX-512 VNNI only and is null elsewhere (S8SmallConvPool::available(t)); the grouped
// convolution kernel of 8-channel groups exists where the CPU has AVX-512 VNNI or AVX-VNNI.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

struct QuantizeParams;
struct U8AddParams;
struct U8MulParams;
struct U8AffineParams;
struct S8SmallConvKernel;
struct S8PlanesRun;  // s8-pointwise-planes.h

using U8QuantizeRowFn = void (*)(const float* in, uint8_t* out, size_t n, const QuantizeParams& p);
using U8DequantizeRowFn = void (*)(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point);
// `pixels` consecutive output pixels of a uint8 NHWC max pool whose windows have the same shape:
// out[p * channels + c] = max over t < count of taps[t][p * step + c] (0 when count is 0).
using U8MaxPoolRunFn = void (*)(const uint8_t* const* taps, size_t count, size_t pixels, size_t step, size_t channels,
                                uint8_t* out);
using S8SmallConvPoolFn = void (*)(const S8SmallConvKernel& k, const uint8_t* in, uint8_t* out, size_t row0,
                                   size_t row1);

// A run of consecutive output pixels of one depthwise row whose taps all lie inside the image
// (or inside a copy of its rows with the padding made real), requantized to uint8 or dequantized
// to float (s8-depthwise.h). The kernel keeps each block of channels in registers from the bias
// through the taps to the stored values: no int32 row in memory between them.
struct S8DepthwiseRun {
  const uint8_t* x = nullptr;          // the first pixel's tap-0 input
  const ptrdiff_t* offset = nullptr;   // per tap: bytes from a pixel's tap-0 input
  size_t taps = 0, channels = 0, pixels = 0;
  size_t pixel_step = 0;               // bytes between consecutive pixels' tap-0 inputs
  const int16_t* weight = nullptr;     // [tap][channel]
  const int32_t* bias = nullptr;       // per channel, or null
  const float* scale = nullptr;        // per channel
  int32_t x_zero_point = 0, y_zero_point = 0;
  float lo = 0, hi = 0;                // clamp bounds minus the output zero point
  uint8_t* out = nullptr;              // pixels x channels, requantized
  float* out_f32 = nullptr;            // or, when set, dequantized: fma(float(sum), scale, 0)
  // Optional, for kernels that multiply pairs of taps (vpmaddwd): the full blocks of 32 channels
  // packed by s8_depthwise_pack_pairs; null where a kernel (or the caller) does not use them.
  const int16_t* pair_weight = nullptr;
  const int32_t* pair_bias = nullptr;  // bias - x_zero_point * sum of the channel's weights
  const float* pair_scale = nullptr;
  // Optional, for kernels that multiply quads of taps (vpdpbusd): the full blocks of 64 channels
  // packed by s8_depthwise_pack_quads (the bias folded as for pairs; 64-byte aligned, as packed);
  // null where unused.
  const int8_t* quad_weight = nullptr;
  const int32_t* quad_bias = nullptr;
  const float* quad_scale = nullptr;
};
using S8DepthwiseRunFn = void (*)(const S8DepthwiseRun& r);

// Output pixels of a grouped int8 convolution with 8 output channels per group (RegNet's group
// width; s8-grouped.h), requantized to uint8: for each pixel and group, 8 int32 sums over the
// taps and the group's input channels, four at a time, then the GEMM path's epilogue.
struct S8GroupedRun {
  const uint8_t* const* taps = nullptr;  // [pixel][tap]: the input pixel (C bytes) each tap reads
  size_t pixels = 0, taps_per_pixel = 0, groups = 0;
  size_t quads = 0;                      // input channels per group / 4
  const int8_t* weight = nullptr;        // s8_grouped_pack's layout
  const int32_t* bias = nullptr;         // per channel, the input zero point folded in
  const float* scale = nullptr;          // per channel
  int32_t y_zero_point = 0;
  float lo = 0, hi = 0;                  // clamp bounds minus the output zero point
  uint8_t* out = nullptr;                // pixel p's channels at out + p * out_stride
  size_t out_stride = 0;
};
using S8GroupedRunFn = void (*)(const S8GroupedRun& r);

struct S8ConvKernels {
  U8QuantizeRowFn quantize_u8_row = nullptr;        // never null
  U8DequantizeRowFn dequantize_u8_row = nullptr;    // never null
  U8MaxPoolRunFn max_pool_u8_run = nullptr;         // never null
  // quantize-rows.h's add_u8_row (QLinearAdd); never null
  void (*add_u8_row)(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t n, const U8AddParams& p) = nullptr;
  // quantize-rows.h's transpose_u8; never null
  void (*transpose_u8)(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, size_t rows,
                       size_t cols) = nullptr;
  // quantize-rows.h's mul_u8_row (QLinearMul); never null
  void (*mul_u8_row)(const uint8_t* a, const float* tb, bool one_tb, uint8_t* y, size_t n, const U8MulParams& p) = nullptr;
  // quantize-rows.h's affine_u8_row (BatchNormU8); never null
  void (*affine_u8_row)(const uint8_t* x, const float* a, const float* b, uint8_t* y, size_t n,
                        const U8AffineParams& p) = nullptr;
  // quantize-rows.h's lookup_u8_row (QLinearLookup); never null
  void (*lookup_u8_row)(const uint8_t* table, const uint8_t* x, uint8_t* y, size_t n) = nullptr;
  S8DepthwiseRunFn depthwise_run = nullptr;          // never null
  S8SmallConvPoolFn small_conv_pool = nullptr;      // null: no small-conv + pool kernel
  S8GroupedRunFn grouped_run_u8 = nullptr;          // null: grouped convolutions as a GEMM per group
                                                    // (no VNNI of either kind)
  // s8-pointwise-planes.h's kernel (a 1x1 convolution into float NCHW planes); null: the GEMM
  // into NHWC scratch and a transpose (below AVX-512 VNNI)
  void (*planes_run)(const S8PlanesRun& r) = nullptr;
};

}  // namespace kiln
