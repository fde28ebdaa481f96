// The 2-D convolution geometry of a Conv or QLinearConv step, read from its attributes (kernel,
// strides, pads, dilations, group) and checked: one reader for both ops so their specs cannot drift.
#pragma once
#include <cstdint>
#include <vector>

#include "kiln/conv.h"
#include "runtime/step.h"

namespace kiln {
namespace runtime {

// Everything but the output size: `x` is the per-image input shape (C, H, W). An empty
// `default_kernel` makes the `kernel` attribute required.
Conv2dGeometry conv_geometry_from_attrs(const StepContext& ctx, const PlanShape& x, size_t out_channels,
                                        const std::vector<int64_t>& default_kernel);

// Fills in the output size and fails unless the window fits the padded input and the column
// scratch of a few images stays addressable.
void complete_conv_geometry(const StepContext& ctx, const PlanShape& x, Conv2dGeometry& g);

}  // namespace runtime
}  // namespace kiln
