// uint8 NHWC max pooling: the window's in-image taps are listed (padding is skipped, so it never
// wins) and reduced over channel vectors by the ISA's run kernel: pixel by pixel at the edges, one
// run per row for the columns whose windows lie inside the image.
// Output rows are independent; pieces are fixed by the shape, so threads change nothing.
#include <vector>

#include "elementwise/chunks.h"
#include "common/dispatch.h"
#include "kiln/s8-conv.h"
#include "s8-conv/maxpool-u8.h"

namespace kiln {

void max_pool2d_u8_nhwc(const Pool2dGeometry& g, size_t batch, size_t channels, const uint8_t* in, uint8_t* out,
                        size_t max_threads) {
  const size_t rows = batch * g.out_height;
  if (rows == 0 || g.out_width == 0 || channels == 0) return;
  const U8MaxPoolRunFn run = dispatch().s8_conv.max_pool_u8_run;
  const size_t row_bytes = g.out_width * channels * g.kernel_h * g.kernel_w;
  const size_t piece = std::max<size_t>(1, kStreamPiece / std::max<size_t>(row_bytes, 1));
  // Output columns [inner_begin, inner_end) have every kernel column inside the image: one run
  // each row, its taps stepping stride_w pixels. Listing the taps pixel by pixel cost more than
  // the maxima (SqueezeNet's 3x3/2 pools over 64-128 channels: ~60 cycles a pixel).
  const size_t span_w = (g.kernel_w - 1) * g.dilation_w;
  const size_t inner_begin = std::min(g.out_width, (g.pad_left + g.stride_w - 1) / g.stride_w);
  const size_t last_start = g.in_width + g.pad_left >= span_w + 1 ? g.in_width + g.pad_left - span_w - 1 : 0;
  const size_t inner_end = g.in_width + g.pad_left >= span_w + 1
                               ? std::max(inner_begin, std::min(g.out_width, last_start / g.stride_w + 1))
                               : inner_begin;
  for_each_piece(rows, piece, max_threads, [&](size_t begin, size_t end) {
    std::vector<const uint8_t*> taps(g.kernel_h * g.kernel_w);
    for (size_t r = begin; r < end; ++r) {
      const size_t b = r / g.out_height, oh = r % g.out_height;
      const uint8_t* image = in + b * g.in_plane() * channels;
      uint8_t* row_out = out + r * g.out_width * channels;
      const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.stride_h) - static_cast<ptrdiff_t>(g.pad_top);
      // The taps of output column ow inside the image (padding never wins a max).
      auto list_taps = [&](size_t ow) {
        const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
        size_t count = 0;
        for (size_t kh = 0; kh < g.kernel_h; ++kh) {
          const ptrdiff_t ih = ih0 + static_cast<ptrdiff_t>(kh * g.dilation_h);
          if (ih < 0 || static_cast<size_t>(ih) >= g.in_height) continue;
          for (size_t kw = 0; kw < g.kernel_w; ++kw) {
            const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(kw * g.dilation_w);
            if (iw < 0 || static_cast<size_t>(iw) >= g.in_width) continue;
            taps[count++] = image + (static_cast<size_t>(ih) * g.in_width + static_cast<size_t>(iw)) * channels;
          }
        }
        return count;
      };
      for (size_t ow = 0; ow < inner_begin; ++ow) run(taps.data(), list_taps(ow), 1, 0, channels, row_out + ow * channels);
      if (inner_end > inner_begin) {
        run(taps.data(), list_taps(inner_begin), inner_end - inner_begin, g.stride_w * channels, channels,
            row_out + inner_begin * channels);
      }
      for (size_t ow = inner_end; ow < g.out_width; ++ow) {
        run(taps.data(), list_taps(ow), 1, 0, channels, row_out + ow * channels);
      }
    }
  });
}

}  // namespace kiln
