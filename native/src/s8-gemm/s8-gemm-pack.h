// Packing the activations (A) into the panel layouts of the int8 micro-kernels.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

// Rows [i0, i0 + rows) of A (uint8, M x K, leading dimension lda) into one panel of `mr` rows
// (rows <= mr) over `groups` groups of 4 k: dst[(g * mr + i) * 4 + t] = A(i0 + i, 4g + t); rows
// past `rows` and k past `k` are zero. The I16 variant widens each byte to int16.
void pack_s8_a_u8(const uint8_t* a, size_t lda, size_t i0, size_t rows, size_t mr, size_t k,
                  size_t groups, uint8_t* dst);
void pack_s8_a_i16(const uint8_t* a, size_t lda, size_t i0, size_t rows, size_t mr, size_t k,
                   size_t groups, int16_t* dst);

}  // namespace kiln
