#include "s8-conv/s8-depthwise.h"

#include <vector>

#include "quant/requantize.h"

namespace kiln {

void s8_depthwise_rows(const Conv2dGeometry& g, const S8DepthwiseArgs& a, const uint8_t* in, void* out,
                       size_t row_begin, size_t row_end) {
  const size_t c = g.in_channels;
  thread_local std::vector<uint32_t> acc;  // sums wrap modulo 2^32 like every other path
  acc.resize(c);
  const int32_t zx = a.x_zero_point;
  const int32_t zy = a.y_zero_point;
  const float lo = static_cast<float>(static_cast<int32_t>(a.y_min) - zy);
  const float hi = static_cast<float>(static_cast<int32_t>(a.y_max) - zy);
  for (size_t row = row_begin; row < row_end; ++row) {
    const size_t b = row / g.out_height, oh = row % g.out_height;
    const uint8_t* image = in + b * g.in_plane() * c;
    for (size_t ow = 0; ow < g.out_width; ++ow) {
      uint32_t* s = acc.data();
      for (size_t ch = 0; ch < c; ++ch) s[ch] = a.bias ? static_cast<uint32_t>(a.bias[ch]) : 0u;
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        const ptrdiff_t ih = static_cast<ptrdiff_t>(oh * g.stride_h + kh * g.dilation_h) - static_cast<ptrdiff_t>(g.pad_top);
        if (ih < 0 || ih >= static_cast<ptrdiff_t>(g.in_height)) continue;
        for (size_t kw = 0; kw < g.kernel_w; ++kw) {
          const ptrdiff_t iw = static_cast<ptrdiff_t>(ow * g.stride_w + kw * g.dilation_w) - static_cast<ptrdiff_t>(g.pad_left);
          if (iw < 0 || iw >= static_cast<ptrdiff_t>(g.in_width)) continue;
          const uint8_t* x = image + (static_cast<size_t>(ih) * g.in_width + static_cast<size_t>(iw)) * c;
          const int16_t* w = a.weight + (kh * g.kernel_w + kw) * c;
          // |(x - zx) * w| <= 255 * 128: the product fits; the sum wraps as unsigned.
          for (size_t ch = 0; ch < c; ++ch) s[ch] += static_cast<uint32_t>((static_cast<int32_t>(x[ch]) - zx) * w[ch]);
        }
      }
      const size_t at = (row * g.out_width + ow) * c;
      if (a.float_output) {
        float* o = static_cast<float*>(out) + at;
        for (size_t ch = 0; ch < c; ++ch) o[ch] = dequantize_f32(static_cast<int32_t>(s[ch]), a.scale[ch], 0.0f);
      } else {
        uint8_t* o = static_cast<uint8_t*>(out) + at;
        for (size_t ch = 0; ch < c; ++ch) o[ch] = requantize_u8(static_cast<int32_t>(s[ch]), a.scale[ch], zy, lo, hi);
      }
    }
  }
}

}  // namespace kiln
