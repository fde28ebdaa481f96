// QLinearConv with a small patch and few output channels fused with a 2x2/2 max pool (SeedCNN's
// first layer: 1 or 3 input channels, 3x3 -> 32, ReLU, padded or not): a direct AVX-512 VNNI
// kernel without im2col, output channels in lanes. A padded convolution runs on a copy of each
// image with its border filled with the input zero point (0.0), which stays in cache. Each kernel row's kernel_w * C contiguous NHWC input bytes
// are read as 4-byte groups broadcast to every lane (vpdpbusd; bytes past the row segment meet
// zero weights), so a pooled pixel's four convolution outputs are 4 x (O / 16) accumulators.
//
// The pool runs on the int32 sums, before requantization: requantize(acc) = clamp(round(float(acc)
// * m)) + zp is monotone non-decreasing in acc when m >= 0 (int -> float, * m, clamp and
// round-to-nearest-even each are), so requantize(max(a, b)) = max(requantize(a), requantize(b)) and
// a quarter of the requantizations give the same bits. Only convolution outputs the pool reads are
// computed. The sums are the GEMM's (bias - x_zero_point * column sum + sum x * w, wrapping), so
// results equal S8Conv2dPlan + max_pool2d_u8_nhwc bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/conv.h"
#include "kiln/f32-gemm.h"  // CacheAlignedAllocator
#include "kiln/s8-conv.h"

namespace kiln {

struct DispatchTable;

// Everything the kernel reads, prepared once.
struct S8SmallConvKernel {
  size_t width = 0, channels = 0;   // input row: width * channels bytes
  size_t kernel_h = 0, kernel_w = 0;
  size_t groups = 0;                // 4-byte input groups per output pixel (<= kMaxGroups)
  size_t out_channels = 0;          // <= 32; lanes past it hold zero weights and are not stored
  size_t vectors = 2;               // 16-channel vectors: 1 or 2
  size_t pooled_h = 0, pooled_w = 0;
  const int32_t* group_offset = nullptr;  // groups byte offsets from a pixel's top-left input byte
  const int8_t* weight = nullptr;   // [group][vector][16 lanes][4 bytes]
  const int32_t* offset = nullptr;  // 32: bias - x_zero_point * column sum (wrapping)
  const float* scale = nullptr;     // 32 multipliers
  float lo = 0, hi = 255;           // clamp bounds minus the zero point
  int32_t zero_point = 0;
  static constexpr size_t kMaxGroups = 12;
};

// Pooled rows [row0, row1) of one image (in: H x W x C, out: pooled_h x pooled_w x O). Reads up
// to 3 bytes past the image's last byte.
void s8_small_conv_pool_avx512vnni(const S8SmallConvKernel& k, const uint8_t* in, uint8_t* out, size_t row0,
                                   size_t row1);

class S8SmallConvPool {
 public:
  // True for the shapes the kernel takes: one group, stride 1, undilated, O <= 32, at most
  // kMaxGroups input groups, a 2x2/2 unpadded pool giving floor(OH/2) x floor(OW/2), images (their
  // padding included) of at most kMaxImageBytes, a uint8 output and multipliers >= 0 (not NaN: the pool-first
  // argument needs monotone requantization).
  static bool fits(const Conv2dGeometry& g, size_t pooled_h, size_t pooled_w, const S8ConvQuant& q);
  S8SmallConvPool(const Conv2dGeometry& g, const int8_t* weight_oihw, const int32_t* bias, const S8ConvQuant& q);
  // `t` has the kernel (AVX-512 VNNI only).
  static bool available(const DispatchTable& t);
  // in: batch x H x W x C; out: batch x pooled_h x pooled_w x O. max_threads 0 = the pool size.
  // False, touching nothing, when `t` has no kernel (the ISA can change between building and
  // running): the caller runs the GEMM path instead, on the same table.
  [[nodiscard]] bool run(const DispatchTable& t, const uint8_t* in, uint8_t* out, size_t batch,
                         size_t max_threads) const;

  static constexpr size_t kMaxImageBytes = 16384;

 private:
  Conv2dGeometry given_;  // as built, padding included
  Conv2dGeometry g_;      // what the kernel runs: the padding made part of the input
  uint8_t x_zero_point_ = 0;
  S8SmallConvKernel k_;
  std::vector<int32_t> group_offset_, offset_;
  // Whole cache lines: the 3x3 kernel loads a 64-byte weight vector per group and step.
  std::vector<int8_t, CacheAlignedAllocator<int8_t>> weight_;
  std::vector<float> scale_;
};

}  // namespace kiln
