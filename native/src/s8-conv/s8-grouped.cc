// The grouped int8 convolution's packing and its row driver (portable; the kernel is per ISA).
#include "s8-conv/s8-grouped.h"

#include <algorithm>

#include "s8-conv/s8-im2col.h"

namespace kiln {

bool s8_grouped_supported(const Conv2dGeometry& g) {
  return g.groups > 1 && g.out_channels_per_group() == kS8GroupedWidth && g.in_channels_per_group() % 4 == 0;
}

void s8_grouped_pack(const Conv2dGeometry& g, const int8_t* weight_oihw, const int32_t* bias, uint8_t x_zero_point,
                     std::vector<int8_t>& packed, std::vector<int32_t>& folded_bias) {
  const size_t taps = g.kernel_h * g.kernel_w, cg = g.in_channels_per_group(), quads = cg / 4;
  packed.assign(g.groups * taps * quads * kS8GroupedWidth * 4, 0);
  folded_bias.assign(g.out_channels, 0);
  for (size_t o = 0; o < g.out_channels; ++o) {
    const size_t group = o / kS8GroupedWidth, j = o % kS8GroupedWidth;
    uint32_t sum = 0;
    for (size_t c = 0; c < cg; ++c) {
      for (size_t t = 0; t < taps; ++t) {
        const int8_t w = weight_oihw[(o * cg + c) * taps + t];
        packed[(((group * taps + t) * quads + c / 4) * kS8GroupedWidth + j) * 4 + c % 4] = w;
        sum += static_cast<uint32_t>(static_cast<int32_t>(w));
      }
    }
    const uint32_t b = bias != nullptr ? static_cast<uint32_t>(bias[o]) : 0u;
    folded_bias[o] = static_cast<int32_t>(b - static_cast<uint32_t>(x_zero_point) * sum);
  }
}

void s8_grouped_rows(const Conv2dGeometry& g, const S8GroupedRun& proto, S8GroupedRunFn fn, const uint8_t* in,
                     uint8_t x_zero_point, uint8_t* out, size_t row_begin, size_t row_end) {
  const size_t c = g.in_channels, taps = g.kernel_h * g.kernel_w, ow_n = g.out_width;
  thread_local std::vector<uint8_t> zero_row;  // a pixel of zero points: what padding taps read
  zero_row.assign(c, x_zero_point);
  thread_local std::vector<const uint8_t*> tap_ptrs;
  tap_ptrs.resize(ow_n * taps);
  S8GroupedRun r = proto;
  r.taps = tap_ptrs.data();
  r.pixels = ow_n;
  r.taps_per_pixel = taps;
  r.out_stride = g.out_channels;
  for (size_t row = row_begin; row < row_end; ++row) {
    const size_t b = row / g.out_height, oh = row % g.out_height;
    const uint8_t* image = in + b * g.in_plane() * c;
    for (size_t ow = 0; ow < ow_n; ++ow) s8_tap_pointers(g, image, oh, ow, zero_row.data(), tap_ptrs.data() + ow * taps);
    r.out = out + row * ow_n * g.out_channels;
    fn(r);
  }
}

}  // namespace kiln
