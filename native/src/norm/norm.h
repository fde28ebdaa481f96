// The normalizations over contiguous rows, on the kernels of one dispatch table (norm-ukernel.h).
#pragma once
#include <cstddef>

#include "norm/norm-ukernel.h"

namespace kiln {

// LayerNormalization: `rows` rows of `d` elements each, y = (x - mean) / sqrt(var + eps) *
// scale[j] + bias[j] (scale, bias: d elements; bias may be null). y may equal x.
void layer_norm_forward(const F32NormKernels& k, const float* x, float* y, size_t rows, size_t d,
                        const float* scale, const float* bias, float epsilon, size_t max_threads);

// GroupNormalization (InstanceNormalization: groups == channels): `images` images of `channels`
// planes of `spatial` elements, statistics per group of channels / groups consecutive planes,
// then per channel y = x_hat * scale[c] + bias[c] (scale, bias: `channels` elements). y may equal x.
void group_norm_forward(const F32NormKernels& k, const float* x, float* y, size_t images, size_t channels,
                        size_t groups, size_t spatial, const float* scale, const float* bias, float epsilon,
                        size_t max_threads);

}  // namespace kiln
