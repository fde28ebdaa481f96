// Copies are runs of Cin/groups bytes (or kernel_w * Cin bytes when a whole kernel row is inside
// the image and contiguous). The work is organised per output row (image, oh): which kernel rows
// fall in the image and which output columns have every tap inside are worked out once per row,
// so the common interior pixel is kernel_h plain copies. Small runs (SeedCNN's first layer has
// Cin = 1: runs of 3 bytes) go through fixed-size overlapping moves instead of a memcpy call.
#include <algorithm>
#include <cstring>
#include <vector>

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

// Copies `wide` (4, 8 or 16) bytes where only the first n < wide matter: one load and one store
// instead of a few byte moves. The caller makes sure the read stays inside the input row and the
// extra bytes written are overwritten later.
inline void copy_wide(uint8_t* dst, const uint8_t* src, size_t wide) {
  switch (wide) {
    case 4: std::memcpy(dst, src, 4); break;
    case 8: std::memcpy(dst, src, 8); break;
    default: std::memcpy(dst, src, 16); break;
  }
}

// The GEMM's k padding (fewer than 4 bytes) at the end of a row.
inline void fill_tail(uint8_t* dst, size_t n, uint8_t value) {
  switch (n) {
    case 3: dst[2] = value; [[fallthrough]];
    case 2: dst[1] = value; [[fallthrough]];
    case 1: dst[0] = value; break;
    default: break;
  }
}

inline bool inside(ptrdiff_t v, size_t size) { return v >= 0 && static_cast<size_t>(v) < size; }

// First output column whose leftmost tap is inside the image, and one past the last output column
// whose rightmost tap is inside it (the interior is [lo, hi), possibly empty).
void interior_columns(const Conv2dGeometry& g, size_t* lo, size_t* hi) {
  const size_t span = (g.kernel_w - 1) * g.dilation_w;
  *lo = std::min(g.out_width, (g.pad_left + g.stride_w - 1) / g.stride_w);
  // ow * stride - pad_left + span <= in_width - 1
  const size_t limit = g.in_width - 1 + g.pad_left;
  *hi = limit < span ? 0 : std::min(g.out_width, (limit - span) / g.stride_w + 1);
  if (*hi < *lo) *hi = *lo;
}

}  // namespace

void s8_im2col_nhwc(const Conv2dGeometry& g, const uint8_t* in, size_t group, uint8_t zero_point,
                    size_t row_begin, size_t row_end, size_t row_stride, uint8_t* columns) {
  const size_t cg = g.in_channels_per_group();
  const size_t c = g.in_channels;
  const size_t kw_run = g.kernel_w * cg;     // bytes of one kernel row in a column row
  const size_t patch = g.kernel_h * kw_run;  // == g.patch()
  const size_t tail = row_stride - patch;
  // A whole kernel row is one contiguous run of the input when taps are adjacent pixels and the
  // group spans every channel.
  const bool merge = g.dilation_w == 1 && cg == c;
  const uint8_t* image_base = in + group * cg;
  const size_t row_bytes = g.in_width * c;
  // Runs shorter than 16 bytes are over-copied with one wide move when that is safe.
  const size_t wide = kw_run < 2 || kw_run >= 16 ? 0 : kw_run <= 4 ? 4 : kw_run <= 8 ? 8 : 16;
  size_t ow_lo, ow_hi;
  interior_columns(g, &ow_lo, &ow_hi);
  thread_local std::vector<const uint8_t*> src_rows;  // per kernel row: input row, or null (padding)
  src_rows.resize(g.kernel_h);

  uint8_t* row = columns;
  size_t r = row_begin;
  while (r < row_end) {
    const size_t b = r / g.out_plane();
    const size_t oh = (r / g.out_width) % g.out_height;
    const size_t ow_begin = r % g.out_width;
    const size_t ow_end = std::min(g.out_width, ow_begin + (row_end - r));
    const uint8_t* image = image_base + b * g.in_plane() * c;
    const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.stride_h) - static_cast<ptrdiff_t>(g.pad_top);
    for (size_t kh = 0; kh < g.kernel_h; ++kh) {
      const ptrdiff_t ih = ih0 + static_cast<ptrdiff_t>(kh * g.dilation_h);
      src_rows[kh] = inside(ih, g.in_height) ? image + static_cast<size_t>(ih) * g.in_width * c : nullptr;
    }
    for (size_t ow = ow_begin; ow < ow_end; ++ow, row += row_stride) {
      const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
      uint8_t* dst = row;
      if (merge && ow >= ow_lo && ow < ow_hi) {
        const size_t offset = static_cast<size_t>(iw0) * c;
        // Over-copying spills at most wide - kw_run < kw_run bytes into the next run, the row's
        // tail or the next row, all written after; the last row of the call has no next row.
        const bool over = wide != 0 && offset + wide <= row_bytes && r + (ow - ow_begin) + 1 < row_end;
        for (size_t kh = 0; kh < g.kernel_h; ++kh, dst += kw_run) {
          if (src_rows[kh]) {
            if (over) {
              copy_wide(dst, src_rows[kh] + offset, wide);
            } else {
              copy_run(dst, src_rows[kh] + offset, kw_run);
            }
          } else {
            std::memset(dst, zero_point, kw_run);
          }
        }
      } else {
        for (size_t kh = 0; kh < g.kernel_h; ++kh, dst += kw_run) {
          if (!src_rows[kh]) {
            std::memset(dst, zero_point, kw_run);
            continue;
          }
          for (size_t kw = 0; kw < g.kernel_w; ++kw) {
            const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(kw * g.dilation_w);
            if (inside(iw, g.in_width)) {
              copy_run(dst + kw * cg, src_rows[kh] + static_cast<size_t>(iw) * c, cg);
            } else {
              std::memset(dst + kw * cg, zero_point, cg);
            }
          }
        }
      }
      fill_tail(dst, tail, zero_point);
    }
    r += ow_end - ow_begin;
  }
}

}  // namespace kiln
