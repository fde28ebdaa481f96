// im2col of uint8 NHWC activations for the int8 convolution: one row per output pixel, holding
// for each kernel tap (kh, kw) the group's channels as one contiguous run, so a row is
// kernel_h * kernel_w runs of Cin/groups bytes (kernel_w runs merge into one when they are
// adjacent in memory). Positions in the padding hold the input zero point, which adds exactly 0
// after the GEMM's zero-point compensation.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/conv.h"

namespace kiln {

// Rows [row_begin, row_end) of the column matrix of group `group` (row r = output pixel r of the
// batch, image-major), written at columns + (r - row_begin) * row_stride. row_stride >= g.patch();
// the bytes past the patch (padding up to the GEMM's k group of 4) are set to the zero point too.
void s8_im2col_nhwc(const Conv2dGeometry& g, const uint8_t* in, size_t group, uint8_t zero_point,
                    size_t row_begin, size_t row_end, size_t row_stride, uint8_t* columns);

}  // namespace kiln
