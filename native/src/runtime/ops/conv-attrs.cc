#include "runtime/ops/conv-attrs.h"

#include <string>

namespace kiln {
namespace runtime {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 31;

}  // namespace

Conv2dGeometry conv_geometry_from_attrs(const StepContext& ctx, const PlanShape& x, size_t out_channels,
                                        const std::vector<int64_t>& default_kernel) {
  const auto kernel = ctx.integers_or("kernel", 2, 1, kMaxDim, default_kernel);
  if (kernel.empty()) ctx.fail("attrs.kernel", "2 kernel sizes", "undefined");
  const auto strides = ctx.integers_or("strides", 2, 1, kMaxDim, {1, 1});
  const auto pads = ctx.integers_or("pads", 4, 0, kMaxDim, {0, 0, 0, 0});
  const auto dilations = ctx.integers_or("dilations", 2, 1, kMaxDim, {1, 1});
  const int64_t group = ctx.integer_or("group", 1, kMaxDim, 1);

  Conv2dGeometry g;
  g.in_channels = x[0];
  g.in_height = x[1];
  g.in_width = x[2];
  g.out_channels = out_channels;
  g.kernel_h = static_cast<size_t>(kernel[0]);
  g.kernel_w = static_cast<size_t>(kernel[1]);
  g.stride_h = static_cast<size_t>(strides[0]);
  g.stride_w = static_cast<size_t>(strides[1]);
  g.pad_top = static_cast<size_t>(pads[0]);
  g.pad_left = static_cast<size_t>(pads[1]);
  g.pad_bottom = static_cast<size_t>(pads[2]);
  g.pad_right = static_cast<size_t>(pads[3]);
  g.dilation_h = static_cast<size_t>(dilations[0]);
  g.dilation_w = static_cast<size_t>(dilations[1]);
  g.groups = static_cast<size_t>(group);
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) {
    ctx.fail("attrs.group", "a divisor of the input channels (" + std::to_string(g.in_channels) +
             ") and the output channels (" + std::to_string(g.out_channels) + ")", std::to_string(group));
  }
  return g;
}

void complete_conv_geometry(const StepContext& ctx, const PlanShape& x, Conv2dGeometry& g) {
  g.out_height = window_output_size(g.in_height, g.pad_top, g.pad_bottom, g.kernel_h, g.stride_h, g.dilation_h);
  g.out_width = window_output_size(g.in_width, g.pad_left, g.pad_right, g.kernel_w, g.stride_w, g.dilation_w);
  if (g.out_height == 0 || g.out_width == 0 || !conv2d_geometry_valid(g)) {
    ctx.fail("", "a kernel window that fits the padded input " + shape_text(x), "kernel " + shape_text({g.kernel_h, g.kernel_w}));
  }
  shape_size({g.patch(), g.out_plane(), 64});
}

}  // namespace runtime
}  // namespace kiln
