// Direct kernels for convolutions where every output channel reads a single input channel
// (Cin/groups == 1: depthwise, with any channel multiplier). A GEMM per group would be one row
// deep; these walk the planes directly instead.
#pragma once
#include <cstddef>

#include "kiln/conv.h"

namespace kiln {

inline bool is_depthwise(const Conv2dGeometry& g) { return g.groups > 1 && g.in_channels_per_group() == 1; }

// output = conv(input) + bias (nullable), then ReLU when `relu`. One task per group of planes.
void depthwise_forward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                       const float* bias, bool relu, float* output, size_t max_threads);

// grad_input (nullable) and grad_weight (nullable), overwritten. grad_weight of each output
// channel is summed over the batch by one task in a fixed order.
void depthwise_backward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                        const float* grad_output, float* grad_input, float* grad_weight, size_t max_threads);

}  // namespace kiln
