// One output pixel of a uint8 NHWC max pool, per ISA: out[c] = max over the `count` tap rows
// taps[t][c] (each `channels` bytes), or 0 when count is 0.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

void max_pool_u8_pixel_scalar(const uint8_t* const* taps, size_t count, size_t channels, uint8_t* out);
void max_pool_u8_pixel_avx2(const uint8_t* const* taps, size_t count, size_t channels, uint8_t* out);
void max_pool_u8_pixel_avx512(const uint8_t* const* taps, size_t count, size_t channels, uint8_t* out);

}  // namespace kiln
