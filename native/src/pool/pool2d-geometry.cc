#include "kiln/pool.h"

namespace kiln {

bool pool2d_geometry_valid(const Pool2dGeometry& g) {
  if (g.in_height == 0 || g.in_width == 0) return false;
  const size_t oh = window_output_size(g.in_height, g.pad_top, g.pad_bottom, g.kernel_h, g.stride_h, g.dilation_h);
  const size_t ow = window_output_size(g.in_width, g.pad_left, g.pad_right, g.kernel_w, g.stride_w, g.dilation_w);
  return oh != 0 && ow != 0 && oh == g.out_height && ow == g.out_width;
}

}  // namespace kiln
