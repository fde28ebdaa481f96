#include "kiln/conv.h"

namespace kiln {

size_t window_output_size(size_t in, size_t pad_begin, size_t pad_end, size_t kernel, size_t stride,
                          size_t dilation) {
  if (kernel == 0 || stride == 0 || dilation == 0) return 0;
  const size_t padded = in + pad_begin + pad_end;
  // Overflow-free for geometry the addon admits (every count < 2^31).
  const size_t extent = dilation * (kernel - 1) + 1;
  if (padded < extent) return 0;
  return (padded - extent) / stride + 1;
}

bool Conv2dGeometry::is_pointwise() const {
  return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 &&
         pad_left == 0 && pad_bottom == 0 && pad_right == 0;
}

bool conv2d_geometry_valid(const Conv2dGeometry& g) {
  if (g.in_channels == 0 || g.out_channels == 0 || g.groups == 0) return false;
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) return false;
  if (g.in_height == 0 || g.in_width == 0) return false;
  const size_t oh = window_output_size(g.in_height, g.pad_top, g.pad_bottom, g.kernel_h, g.stride_h, g.dilation_h);
  const size_t ow = window_output_size(g.in_width, g.pad_left, g.pad_right, g.kernel_w, g.stride_w, g.dilation_w);
  return oh != 0 && ow != 0 && oh == g.out_height && ow == g.out_width;
}

Conv2dGeometry padding_made_real(const Conv2dGeometry& g) {
  Conv2dGeometry u = g;
  u.in_height = g.in_height + g.pad_top + g.pad_bottom;
  u.in_width = g.in_width + g.pad_left + g.pad_right;
  u.pad_top = u.pad_left = u.pad_bottom = u.pad_right = 0;
  return u;
}

}  // namespace kiln
