// Contiguous quantize / dequantize rows, per ISA, behind the layout kernels of kiln/s8-conv.h.
// Quantize: q = clamp(x / scale, lo, hi) rounded half to even, + zero_point, where lo = -zp and
// hi = 255 - zp (clamping before rounding equals saturating after: the bounds are integers), and
// NaN counts as 0 (it quantizes to the zero point). Dequantize: x = float(q - zp) * scale.
// Every variant gives the scalar one's bits.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace kiln {

struct QuantizeParams {
  float scale = 1, lo = 0, hi = 255;
  int32_t zero_point = 0;
};

void quantize_u8_row_scalar(const float* in, uint8_t* out, size_t n, const QuantizeParams& p);
void quantize_u8_row_avx2(const float* in, uint8_t* out, size_t n, const QuantizeParams& p);
void quantize_u8_row_avx512(const float* in, uint8_t* out, size_t n, const QuantizeParams& p);

void dequantize_u8_row_scalar(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point);
void dequantize_u8_row_avx2(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point);
void dequantize_u8_row_avx512(const uint8_t* in, float* out, size_t n, float scale, int32_t zero_point);

// dst[j * dst_stride + i] = src[i * src_stride + j] for i < rows, j < cols: the byte transpose
// between a tile of channel rows and NHWC pixels. AVX2 moves whole 16x16 blocks through
// unpack stages (the AVX-512 table keeps it: the blocks are 16 bytes wide).
void transpose_u8_scalar(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, size_t rows,
                         size_t cols);
void transpose_u8_avx2(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, size_t rows,
                       size_t cols);

namespace {  // internal linkage: included by TUs built with different -m flags

// One element of the specification (the scalar row and the SIMD tails use it).
inline uint8_t quantize_u8_one(float x, const QuantizeParams& p) {
  float v = x / p.scale;
  if (v != v) v = 0.0f;
  v = v < p.lo ? p.lo : v;
  v = v > p.hi ? p.hi : v;
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyint(v)) + p.zero_point);
}

inline float dequantize_u8_one(uint8_t q, float scale, int32_t zero_point) {
  return static_cast<float>(static_cast<int32_t>(q) - zero_point) * scale;
}

}  // namespace
}  // namespace kiln
