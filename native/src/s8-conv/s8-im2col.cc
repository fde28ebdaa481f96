// Copies are runs of Cin/groups bytes (or kernel_w * Cin bytes when a whole kernel row is inside
// the image and contiguous). Small runs (SeedCNN's first layer has Cin = 1: runs of 3 bytes) go
// through fixed-size overlapping moves instead of a memcpy call per run.
#include <cstring>

#include "s8-conv/s8-im2col.h"

namespace kiln {
namespace {

inline void copy_run(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n >= 16) {
    std::memcpy(dst, src, n);
  } else if (n >= 8) {
    uint64_t head, tail;
    std::memcpy(&head, src, 8);
    std::memcpy(&tail, src + n - 8, 8);
    std::memcpy(dst, &head, 8);
    std::memcpy(dst + n - 8, &tail, 8);
  } else if (n >= 4) {
    uint32_t head, tail;
    std::memcpy(&head, src, 4);
    std::memcpy(&tail, src + n - 4, 4);
    std::memcpy(dst, &head, 4);
    std::memcpy(dst + n - 4, &tail, 4);
  } else {
    dst[0] = src[0];
    dst[n - 1] = src[n - 1];
    if (n > 2) dst[1] = src[1];
  }
}

// ih/iw as signed values: negative or >= size means padding.
inline bool inside(ptrdiff_t v, size_t size) { return v >= 0 && static_cast<size_t>(v) < size; }

}  // namespace

void s8_im2col_nhwc(const Conv2dGeometry& g, const uint8_t* in, size_t group, uint8_t zero_point,
                    size_t row_begin, size_t row_end, uint8_t* columns) {
  const size_t cg = g.in_channels_per_group();
  const size_t c = g.in_channels;
  const size_t kw_run = g.kernel_w * cg;     // bytes of one kernel row in a column row
  const size_t patch = g.kernel_h * kw_run;  // == g.patch()
  // A whole kernel row is one contiguous run of the input when taps are adjacent pixels and the
  // group spans every channel.
  const bool merge = g.dilation_w == 1 && cg == c;
  const uint8_t* image_base = in + group * cg;

  size_t ow = row_begin % g.out_width;
  size_t oh = (row_begin / g.out_width) % g.out_height;
  size_t b = row_begin / g.out_plane();
  uint8_t* row = columns;
  for (size_t r = row_begin; r < row_end; ++r, row += patch) {
    const uint8_t* image = image_base + b * g.in_plane() * c;
    const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.stride_h) - static_cast<ptrdiff_t>(g.pad_top);
    const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
    const bool row_inside = iw0 >= 0 && static_cast<size_t>(iw0) + (g.kernel_w - 1) * g.dilation_w < g.in_width;
    uint8_t* dst = row;
    for (size_t kh = 0; kh < g.kernel_h; ++kh, dst += kw_run) {
      const ptrdiff_t ih = ih0 + static_cast<ptrdiff_t>(kh * g.dilation_h);
      if (!inside(ih, g.in_height)) {
        std::memset(dst, zero_point, kw_run);
        continue;
      }
      const uint8_t* src_row = image + static_cast<size_t>(ih) * g.in_width * c;
      if (merge && row_inside) {
        copy_run(dst, src_row + static_cast<size_t>(iw0) * c, kw_run);
        continue;
      }
      for (size_t kw = 0; kw < g.kernel_w; ++kw) {
        const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(kw * g.dilation_w);
        if (inside(iw, g.in_width)) {
          copy_run(dst + kw * cg, src_row + static_cast<size_t>(iw) * c, cg);
        } else {
          std::memset(dst + kw * cg, zero_point, cg);
        }
      }
    }
    if (++ow == g.out_width) {
      ow = 0;
      if (++oh == g.out_height) {
        oh = 0;
        ++b;
      }
    }
  }
}

}  // namespace kiln
