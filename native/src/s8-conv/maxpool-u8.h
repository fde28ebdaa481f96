// A run of output pixels of a uint8 NHWC max pool, per ISA (s8-conv-ukernel.h's U8MaxPoolRunFn):
// pixel p's taps are taps[t] + p * step, each `channels` bytes; out holds the pixels densely.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

void max_pool_u8_run_scalar(const uint8_t* const* taps, size_t count, size_t pixels, size_t step, size_t channels,
                            uint8_t* out);
void max_pool_u8_run_avx2(const uint8_t* const* taps, size_t count, size_t pixels, size_t step, size_t channels,
                            uint8_t* out);
void max_pool_u8_run_avx512(const uint8_t* const* taps, size_t count, size_t pixels, size_t step, size_t channels,
                            uint8_t* out);

}  // namespace kiln
