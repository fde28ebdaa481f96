// im2col of uint8 NHWC activations for the int8 convolution, or the row pointers that let the
// GEMM do without it. im2col: one row per output pixel, holding
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

// The input pixel each tap of output pixel (oh, ow) reads, in kh-major order: `image` (one
// image, H x W x C) at (ih, iw), or `padding` (C bytes of the zero point) outside it. Taps of
// grouped and depthwise convolutions read through these; taps[kernel_h * kernel_w].
void s8_tap_pointers(const Conv2dGeometry& g, const uint8_t* image, size_t oh, size_t ow, const uint8_t* padding,
                     const uint8_t** taps);

// Whether the convolution can skip im2col and have the GEMM read its input in place, one kernel
// row (kernel_w * C contiguous bytes: one group, no horizontal dilation) per pointer. Kernel rows
// must be whole k groups of 4 bytes, and long enough (16 bytes) that following a pointer per row
// costs less than copying it.
bool s8_indirect_supported(const Conv2dGeometry& g);

// The row pointers of that GEMM (s8-gemm-ukernel.h's S8IndirectA) for output pixels [row_begin,
// row_end): rows[kh * n + i] with n = row_end - row_begin points at the kernel_w * C input bytes
// kernel row kh of pixel row_begin + i covers. Kernel rows in the top or bottom padding point at
// `zero_row` (kernel_w * C bytes of the zero point); a pixel whose kernel rows cross the left or
// right edge gets its whole patch (patch() bytes, padding as the zero point) copied to `edges`,
// which must hold n patches, and points there.
void s8_indirection_nhwc(const Conv2dGeometry& g, const uint8_t* in, uint8_t zero_point, const uint8_t* zero_row,
                         size_t row_begin, size_t row_end, const uint8_t** rows, uint8_t* edges);

}  // namespace kiln
