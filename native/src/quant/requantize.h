// The int8 epilogues element by element: the specification every SIMD path must reproduce bit
// for bit, used by the scalar micro-kernel and the naive oracle.
// Internal linkage on purpose: this header is included by translation units compiled with
// different -m flags, and an inline function shared between them could be linked from the one
// built for the wider ISA.
#pragma once
#include <cmath>
#include <cstdint>

namespace kiln {
namespace {

// The int32 sum: exact while it fits, else modulo 2^32 (SIMD adds wrap; signed overflow in C++
// would be undefined, so the scalar paths add as unsigned).
inline int32_t wrap_add(int32_t x, int32_t y) {
  return static_cast<int32_t>(static_cast<uint32_t>(x) + static_cast<uint32_t>(y));
}
inline int32_t wrap_mul(int32_t x, int32_t y) {
  return static_cast<int32_t>(static_cast<uint32_t>(x) * static_cast<uint32_t>(y));
}

// The per-column term added to every sum: bias - za * colsum (wrapping like the sum).
inline int32_t column_offset(int32_t bias, uint8_t a_zero_point, int32_t column_sum) {
  return static_cast<int32_t>(static_cast<uint32_t>(bias) -
                              static_cast<uint32_t>(a_zero_point) * static_cast<uint32_t>(column_sum));
}

// round(float(acc) * scale) clamped to [lo, hi] (integers: min/max minus the zero point), ties to
// even. Clamping before rounding is the same as after (the bounds are integers) and keeps the
// float -> int conversion in range: SIMD cvtps2dq turns out-of-range values into INT_MIN.
inline int32_t requantize_clamped(int32_t acc, float scale, float lo, float hi) {
  float y = static_cast<float>(acc) * scale;
  y = y < lo ? lo : y;
  y = y > hi ? hi : y;
  return static_cast<int32_t>(std::nearbyint(y));  // default rounding mode: ties to even
}

inline uint8_t requantize_u8(int32_t acc, float scale, int32_t zero_point, float lo, float hi) {
  return static_cast<uint8_t>(requantize_clamped(acc, scale, lo, hi) + zero_point);
}

inline float dequantize_f32(int32_t acc, float scale, float bias) {
  return std::fma(static_cast<float>(acc), scale, bias);
}

}  // namespace
}  // namespace kiln
