// Copies are runs of Cin/groups bytes (or kernel_w * Cin bytes when a whole kernel row is inside
// the image and contiguous). The work is organised per output row (image, oh): which kernel rows
// fall in the image and which output columns have every tap inside are worked out once per row;
// the interior columns are filled one kernel row at a time, as strided copies of a run length
// known at compile time for the common sizes (SeedCNN's first layer has Cin = 1: runs of 3 bytes),
// so no copy pays for a memcpy call or a size dispatch.
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

// count runs of N bytes, from src every src_stride bytes to dst every dst_stride bytes. N known at
// compile time turns each copy into one or two moves.
template <size_t N>
void copy_column(uint8_t* dst, size_t dst_stride, const uint8_t* src, size_t src_stride, size_t count) {
  for (size_t i = 0; i < count; ++i, dst += dst_stride, src += src_stride) std::memcpy(dst, src, N);
}

void copy_column_any(uint8_t* dst, size_t dst_stride, const uint8_t* src, size_t src_stride, size_t count,
                     size_t n) {
  switch (n) {
#define KILN_COPY_CASE(N) \
  case N: copy_column<N>(dst, dst_stride, src, src_stride, count); return;
    KILN_COPY_CASE(1) KILN_COPY_CASE(2) KILN_COPY_CASE(3) KILN_COPY_CASE(4) KILN_COPY_CASE(5)
    KILN_COPY_CASE(6) KILN_COPY_CASE(7) KILN_COPY_CASE(8) KILN_COPY_CASE(9) KILN_COPY_CASE(12)
    KILN_COPY_CASE(15) KILN_COPY_CASE(21) KILN_COPY_CASE(33)  // RGB stems' kernel rows: 5, 7, 11 taps of 3
    KILN_COPY_CASE(16) KILN_COPY_CASE(24) KILN_COPY_CASE(32) KILN_COPY_CASE(48) KILN_COPY_CASE(64)
    KILN_COPY_CASE(96)
#undef KILN_COPY_CASE
    default:
      for (size_t i = 0; i < count; ++i, dst += dst_stride, src += src_stride) copy_run(dst, src, n);
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

// One output pixel, tap by tap (edges, dilated or grouped convolutions).
void pixel_by_taps(const Conv2dGeometry& g, const std::vector<const uint8_t*>& src_rows, ptrdiff_t iw0,
                   size_t cg, uint8_t zero_point, uint8_t* dst) {
  const size_t c = g.in_channels, kw_run = g.kernel_w * cg;
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

// The output pixels [r, row_end) take of output row (image, oh): columns [ow_begin, ow_end). Sets
// src_rows[kh] to the input row kernel row kh reads (from image_base, the group's first channel),
// or null in the padding.
struct RowSpan {
  size_t ow_begin, ow_end;
};
RowSpan row_span(const Conv2dGeometry& g, const uint8_t* image_base, size_t r, size_t row_end, const uint8_t** src_rows) {
  const size_t b = r / g.out_plane(), oh = (r / g.out_width) % g.out_height, c = g.in_channels;
  RowSpan span;
  span.ow_begin = r % g.out_width;
  span.ow_end = std::min(g.out_width, span.ow_begin + (row_end - r));
  const uint8_t* image = image_base + b * g.in_plane() * c;
  const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.stride_h) - static_cast<ptrdiff_t>(g.pad_top);
  for (size_t kh = 0; kh < g.kernel_h; ++kh) {
    const ptrdiff_t ih = ih0 + static_cast<ptrdiff_t>(kh * g.dilation_h);
    src_rows[kh] = inside(ih, g.in_height) ? image + static_cast<size_t>(ih) * g.in_width * c : nullptr;
  }
  return span;
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
  size_t ow_lo, ow_hi;
  interior_columns(g, &ow_lo, &ow_hi);
  if (!merge) ow_hi = ow_lo;  // no interior fast path
  thread_local std::vector<const uint8_t*> src_rows;  // per kernel row: input row, or null (padding)
  src_rows.resize(g.kernel_h);

  size_t r = row_begin;
  while (r < row_end) {
    const auto [ow_begin, ow_end] = row_span(g, image_base, r, row_end, src_rows.data());
    uint8_t* first = columns + (r - row_begin) * row_stride;  // the row of ow_begin
    // Interior columns: whole kernel rows, one kernel row at a time over all those pixels.
    const size_t f_lo = std::max(ow_begin, ow_lo), f_hi = std::min(ow_end, ow_hi);
    if (f_lo < f_hi) {
      uint8_t* dst = first + (f_lo - ow_begin) * row_stride;
      const size_t count = f_hi - f_lo;
      const size_t offset = (f_lo * g.stride_w - g.pad_left) * c;
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        if (src_rows[kh]) {
          copy_column_any(dst + kh * kw_run, row_stride, src_rows[kh] + offset, g.stride_w * c, count, kw_run);
        } else {
          for (size_t i = 0; i < count; ++i) std::memset(dst + i * row_stride + kh * kw_run, zero_point, kw_run);
        }
      }
      if (tail) {
        for (size_t i = 0; i < count; ++i) fill_tail(dst + i * row_stride + patch, tail, zero_point);
      }
    }
    for (size_t ow = ow_begin; ow < ow_end; ++ow) {
      if (ow >= f_lo && ow < f_hi) continue;
      uint8_t* dst = first + (ow - ow_begin) * row_stride;
      const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
      pixel_by_taps(g, src_rows, iw0, cg, zero_point, dst);
      fill_tail(dst + patch, tail, zero_point);
    }
    r += ow_end - ow_begin;
  }
}

void s8_tap_pointers(const Conv2dGeometry& g, const uint8_t* image, size_t oh, size_t ow, const uint8_t* padding,
                     const uint8_t** taps) {
  const size_t c = g.in_channels;
  const ptrdiff_t ih0 = static_cast<ptrdiff_t>(oh * g.stride_h) - static_cast<ptrdiff_t>(g.pad_top);
  const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
  for (size_t kh = 0; kh < g.kernel_h; ++kh) {
    const ptrdiff_t ih = ih0 + static_cast<ptrdiff_t>(kh * g.dilation_h);
    for (size_t kw = 0; kw < g.kernel_w; ++kw) {
      const ptrdiff_t iw = iw0 + static_cast<ptrdiff_t>(kw * g.dilation_w);
      *taps++ = inside(ih, g.in_height) && inside(iw, g.in_width)
                    ? image + (static_cast<size_t>(ih) * g.in_width + static_cast<size_t>(iw)) * c
                    : padding;
    }
  }
}

bool s8_indirect_supported(const Conv2dGeometry& g) {
  const size_t run = g.kernel_w * g.in_channels;
  return g.groups == 1 && g.dilation_w == 1 && run % 4 == 0 && run >= 16;
}

void s8_indirection_nhwc(const Conv2dGeometry& g, const uint8_t* in, uint8_t zero_point, const uint8_t* zero_row,
                         size_t row_begin, size_t row_end, const uint8_t** rows, uint8_t* edges) {
  const size_t c = g.in_channels, n = row_end - row_begin, step = g.stride_w * c, run = g.kernel_w * c;
  size_t ow_lo, ow_hi;
  interior_columns(g, &ow_lo, &ow_hi);
  thread_local std::vector<const uint8_t*> src_rows_buffer;  // per kernel row: input row, or null (padding)
  src_rows_buffer.resize(g.kernel_h);
  const uint8_t** src_rows = src_rows_buffer.data();

  size_t r = row_begin;
  while (r < row_end) {
    const auto [ow_begin, ow_end] = row_span(g, in, r, row_end, src_rows);
    const uint8_t** first = rows + (r - row_begin) - ow_begin;  // + ow: pixel ow's pointer of kernel row 0
    // Interior pixels: kernel row kh of pixel ow starts at input column ow * stride_w - pad_left.
    const size_t f_lo = std::max(ow_begin, ow_lo), f_hi = std::min(ow_end, ow_hi);
    for (size_t kh = 0; kh < g.kernel_h; ++kh) {
      const uint8_t** dst = first + kh * n;
      if (!src_rows[kh]) {
        for (size_t ow = f_lo; ow < f_hi; ++ow) dst[ow] = zero_row;
        continue;
      }
      const uint8_t* p = src_rows[kh] + (f_lo * g.stride_w - g.pad_left) * c;
      for (size_t ow = f_lo; ow < f_hi; ++ow, p += step) dst[ow] = p;
    }
    // Edge pixels: each kernel row inside the image copied with its padding to `edges`; taps
    // [tap_lo, tap_hi) of a row are inside the image (dilation_w is 1).
    for (size_t ow = ow_begin; ow < ow_end; ++ow) {
      if (ow == f_lo && f_lo < f_hi) ow = f_hi;
      if (ow >= ow_end) break;
      const ptrdiff_t iw0 = static_cast<ptrdiff_t>(ow * g.stride_w) - static_cast<ptrdiff_t>(g.pad_left);
      const ptrdiff_t w = static_cast<ptrdiff_t>(g.in_width), kw = static_cast<ptrdiff_t>(g.kernel_w);
      const size_t tap_lo = static_cast<size_t>(std::clamp<ptrdiff_t>(-iw0, 0, kw));
      const size_t tap_hi = static_cast<size_t>(std::clamp<ptrdiff_t>(w - iw0, static_cast<ptrdiff_t>(tap_lo), kw));
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        if (!src_rows[kh]) {
          first[kh * n + ow] = zero_row;
          continue;
        }
        std::memset(edges, zero_point, tap_lo * c);
        std::memcpy(edges + tap_lo * c, src_rows[kh] + static_cast<size_t>(iw0 + static_cast<ptrdiff_t>(tap_lo)) * c,
                    (tap_hi - tap_lo) * c);
        std::memset(edges + tap_hi * c, zero_point, run - tap_hi * c);
        first[kh * n + ow] = edges;
        edges += run;
      }
    }
    r += ow_end - ow_begin;
  }
}

}  // namespace kiln
