// 2-D max and average pooling over NCHW planes. Nothing here knows about Node.
// Each (image, channel) plane is independent; planes are spread over threads, so results do not
// depend on the thread count.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/conv.h"  // window_output_size

namespace kiln {

// Window geometry over `planes` = batch * channels planes of in_height x in_width.
struct Pool2dGeometry {
  size_t planes = 0;
  size_t in_height = 0, in_width = 0;
  size_t out_height = 0, out_width = 0;
  size_t kernel_h = 1, kernel_w = 1;
  size_t stride_h = 1, stride_w = 1;
  size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  size_t dilation_h = 1, dilation_w = 1;

  size_t in_plane() const { return in_height * in_width; }
  size_t out_plane() const { return out_height * out_width; }
};

// True when counts are >= 1 and out_height/out_width equal window_output_size(...).
bool pool2d_geometry_valid(const Pool2dGeometry& g);

// output = max over each window of the input positions inside the plane (padding never wins).
// indices (nullable) receives the flat offset (h * in_width + w) of the winner in its plane; the
// first maximum in row-major window order wins ties, a NaN wins over numbers. A window that covers
// no input position (possible only with large padding or dilation) yields -inf and index -1.
void max_pool2d_forward(const Pool2dGeometry& g, const float* input, float* output,
                        int32_t* indices, size_t max_threads = 0);

// grad_input = 0, then grad_input[plane][indices[o]] += grad_output[o] for every output o, in
// output order. Indices outside [0, in_plane) (e.g. -1) contribute nothing.
void max_pool2d_backward(const Pool2dGeometry& g, const float* grad_output, const int32_t* indices,
                         float* grad_input, size_t max_threads = 0);

// output = sum over the window / divisor. With count_include_pad the divisor counts the window
// positions inside the padded extent [-pad_begin, in + pad_end) (ONNX), else only those inside
// the input. A window with a zero divisor yields 0.
void avg_pool2d_forward(const Pool2dGeometry& g, const float* input, float* output,
                        bool count_include_pad, size_t max_threads = 0);

// grad_input = 0, then each output's gradient / divisor is added to its window's input positions.
void avg_pool2d_backward(const Pool2dGeometry& g, const float* grad_output, float* grad_input,
                         bool count_include_pad, size_t max_threads = 0);

}  // namespace kiln
