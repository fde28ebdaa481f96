// One output row of a 2x2, stride-2, unpadded max pool, per ISA: out[j] = max of the window over
// input rows `top` and `bottom` at columns 2j, 2j+1, and idx[j] (when idx is not null) its flat
// offset in the plane, `first` being the plane offset of top[0] and `width` the plane width.
// Ties keep the first tap in window order (top-left, top-right, bottom-left, bottom-right); a NaN
// takes over from a number, never the other way round.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

void max_pool_2x2_row_avx2(const float* top, const float* bottom, size_t n, size_t first, size_t width,
                           float* out, int32_t* idx);
void max_pool_2x2_row_avx512(const float* top, const float* bottom, size_t n, size_t first, size_t width,
                             float* out, int32_t* idx);

}  // namespace kiln
