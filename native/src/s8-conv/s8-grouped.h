// Direct int8 grouped convolution with 8 output channels per group and a multiple of 4 input
// channels per group (RegNetY's group width 8): per output pixel and group, vpdpbusd on 8 lanes
// (one per output channel) against broadcast quads of the group's input bytes, so every multiply
// is one the convolution has. As a GEMM per group it filled 8 of a 64-column tile and ran at
// ~28 GOPS. The sums are the exact int32 sums (wrapping as the GEMM's) and the epilogue is the
// GEMM's, so the bits are the GEMM path's. Taps in the padding read a row of zero points, which
// the zero point folded into the bias cancels exactly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/conv.h"
#include "s8-conv/s8-conv-ukernel.h"

namespace kiln {

constexpr size_t kS8GroupedWidth = 8;  // output channels per group

// Whether `g` is a grouped (not depthwise) convolution the kernel takes.
bool s8_grouped_supported(const Conv2dGeometry& g);

// Weights (OIHW, int8) as the kernel reads them: per group, tap and quad q of the group's input
// channels, 8 x 4 bytes (output channel 8 g + j's weights of input channels 4q .. 4q + 3: one
// vpdpbusd operand). folded_bias[o] = bias[o] - x_zero_point * (sum of o's weights), wrapping.
void s8_grouped_pack(const Conv2dGeometry& g, const int8_t* weight_oihw, const int32_t* bias, uint8_t x_zero_point,
                     std::vector<int8_t>& packed, std::vector<int32_t>& folded_bias);

// AVX-512 VNNI (vpdpbusd on ymm, AVX512VL).
void s8_grouped_run_u8_avx512vnni(const S8GroupedRun& r);
// AVX-VNNI (the VEX form) sets the table's entry itself: its kernel carries a target attribute
// (s8-grouped-avxvnni.cc), and a plain declaration beside it would make GCC treat the two as
// function versions. Only where cpu_features().avxvnni.
struct DispatchTable;
void fill_s8_grouped_avxvnni(DispatchTable* table);

// Output rows [row_begin, row_end) of the batch (row = image * out_height + oh): each row's tap
// pointers, then `fn` on its pixels. `proto` holds the weights, bias, scale and clamp.
void s8_grouped_rows(const Conv2dGeometry& g, const S8GroupedRun& proto, S8GroupedRunFn fn, const uint8_t* in,
                     uint8_t x_zero_point, uint8_t* out, size_t row_begin, size_t row_end);

}  // namespace kiln
