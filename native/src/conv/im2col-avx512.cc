// AVX-512 whole-plane im2col and col2im for stride-1 rows (other strides take the shared walk).
// Masked loads read padding lanes as zero without touching memory. The masks depend only on
// the kernel column and the 16-column block, so they are computed once per call, not per row.
// col2im gathers every kernel column's contribution to an input row block in a register and
// stores it once: adding tap by tap would reload what the previous masked store just wrote,
// which store forwarding cannot serve.
#include "common/simd.h"

#include "conv/im2col-plane.h"
#include "conv/im2col.h"

namespace kiln {
namespace {

constexpr size_t kMaxBlocks = 8;   // rows up to 128 columns take the fast loops
constexpr size_t kMaxKernelW = 16;

// Lanes j with lo <= base + j < hi.
inline __mmask16 lanes(ptrdiff_t base, ptrdiff_t lo, ptrdiff_t hi) {
  ptrdiff_t a = lo - base;
  ptrdiff_t b = hi - base;
  a = a < 0 ? 0 : (a > 16 ? 16 : a);
  b = b < 0 ? 0 : (b > 16 ? 16 : b);
  if (b <= a) return 0;
  return static_cast<__mmask16>(((1u << b) - 1u) & ~((1u << a) - 1u));
}

struct RowAvx512 {
  static void zero(float* dst, size_t n) {
    for (size_t i = 0; i < n; i += 16) _mm512_mask_storeu_ps(dst + i, lanes(static_cast<ptrdiff_t>(i), 0, static_cast<ptrdiff_t>(n)), _mm512_setzero_ps());
  }
  static void copy(float* dst, size_t n, const float* row, ptrdiff_t offset, size_t lo, size_t hi) {
    for (size_t i = 0; i < n; i += 16) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const __m512 v = _mm512_maskz_loadu_ps(lanes(at, static_cast<ptrdiff_t>(lo), static_cast<ptrdiff_t>(hi)), offset_address(row, offset + at));
      _mm512_mask_storeu_ps(dst + i, lanes(at, 0, static_cast<ptrdiff_t>(n)), v);
    }
  }
  static void add(float* row, ptrdiff_t offset, const float* src, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i += 16) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const __mmask16 m = lanes(at, static_cast<ptrdiff_t>(lo), static_cast<ptrdiff_t>(hi));
      float* target = offset_address(row, offset + at);
      _mm512_mask_storeu_ps(target, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, target), _mm512_maskz_loadu_ps(m, src + i)));
    }
  }
};

bool fast_rows(const Conv2dGeometry& g) {
  return g.stride_w == 1 && g.kernel_w <= kMaxKernelW && (g.out_width + 15) / 16 <= kMaxBlocks &&
         (g.in_width + 15) / 16 < kMaxBlocks;
}

void im2col_rows(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  const size_t ow_count = g.out_width;
  const size_t blocks = (ow_count + 15) / 16;
  __mmask16 store[kMaxBlocks];
  for (size_t b = 0; b < blocks; ++b) store[b] = lanes(static_cast<ptrdiff_t>(16 * b), 0, static_cast<ptrdiff_t>(ow_count));
  for (size_t kw = 0; kw < g.kernel_w; ++kw) {
    const ptrdiff_t dw = static_cast<ptrdiff_t>(kw * g.dilation_w) - static_cast<ptrdiff_t>(g.pad_left);
    const ColumnSpan span = valid_columns(dw, 1, g.in_width, ow_count);
    __mmask16 load[kMaxBlocks];
    for (size_t b = 0; b < blocks; ++b) {
      load[b] = lanes(static_cast<ptrdiff_t>(16 * b), static_cast<ptrdiff_t>(span.lo), static_cast<ptrdiff_t>(span.hi));
    }
    for (size_t c = 0; c < channels; ++c) {
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        float* dst = col + ((c * g.kernel_h + kh) * g.kernel_w + kw) * ld;
        const ptrdiff_t dh = static_cast<ptrdiff_t>(kh * g.dilation_h) - static_cast<ptrdiff_t>(g.pad_top);
        for (size_t oh = 0; oh < g.out_height; ++oh, dst += ow_count) {
          const ptrdiff_t ih = static_cast<ptrdiff_t>(oh) * static_cast<ptrdiff_t>(g.stride_h) + dh;
          if (ih < 0 || ih >= static_cast<ptrdiff_t>(g.in_height)) {
            for (size_t b = 0; b < blocks; ++b) _mm512_mask_storeu_ps(dst + 16 * b, store[b], _mm512_setzero_ps());
            continue;
          }
          const float* row = input + (c * g.in_height + static_cast<size_t>(ih)) * g.in_width;
          for (size_t b = 0; b < blocks; ++b) {
            const __m512 v = _mm512_maskz_loadu_ps(load[b], offset_address(row, dw + static_cast<ptrdiff_t>(16 * b)));
            _mm512_mask_storeu_ps(dst + 16 * b, store[b], v);
          }
        }
      }
    }
  }
}

void col2im_rows(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  const size_t ow_count = g.out_width;
  const size_t kw_count = g.kernel_w;
  // Input columns any tap of a row reaches: [first, last).
  ptrdiff_t offset[kMaxKernelW];
  ColumnSpan span[kMaxKernelW];
  ptrdiff_t first = static_cast<ptrdiff_t>(g.in_width), last = 0;
  for (size_t kw = 0; kw < kw_count; ++kw) {
    offset[kw] = static_cast<ptrdiff_t>(kw * g.dilation_w) - static_cast<ptrdiff_t>(g.pad_left);
    span[kw] = valid_columns(offset[kw], 1, g.in_width, ow_count);
    if (span[kw].hi > span[kw].lo) {
      const ptrdiff_t a = static_cast<ptrdiff_t>(span[kw].lo) + offset[kw];
      const ptrdiff_t b = static_cast<ptrdiff_t>(span[kw].hi) + offset[kw];
      first = a < first ? a : first;
      last = b > last ? b : last;
    }
  }
  if (last <= first) return;
  const size_t blocks = static_cast<size_t>(last - first + 15) / 16;
  // Block b covers input columns first + 16 b + lane; kernel column kw contributes where the
  // output column (input column - offset) lies in its span.
  __mmask16 target[kMaxBlocks];
  __mmask16 tap[kMaxKernelW][kMaxBlocks];
  for (size_t b = 0; b < blocks; ++b) {
    const ptrdiff_t base = first + static_cast<ptrdiff_t>(16 * b);
    target[b] = lanes(base, first, last);
    for (size_t kw = 0; kw < kw_count; ++kw) {
      tap[kw][b] = lanes(base - offset[kw], static_cast<ptrdiff_t>(span[kw].lo), static_cast<ptrdiff_t>(span[kw].hi));
    }
  }
  for (size_t c = 0; c < channels; ++c) {
    for (size_t kh = 0; kh < g.kernel_h; ++kh) {
      const ptrdiff_t dh = static_cast<ptrdiff_t>(kh * g.dilation_h) - static_cast<ptrdiff_t>(g.pad_top);
      const float* rows = col + (c * g.kernel_h + kh) * kw_count * ld;
      for (size_t oh = 0; oh < g.out_height; ++oh) {
        const ptrdiff_t ih = static_cast<ptrdiff_t>(oh) * static_cast<ptrdiff_t>(g.stride_h) + dh;
        if (ih < 0 || ih >= static_cast<ptrdiff_t>(g.in_height)) continue;
        float* dst = grad_input + (c * g.in_height + static_cast<size_t>(ih)) * g.in_width + first;
        for (size_t b = 0; b < blocks; ++b) {
          __m512 acc = _mm512_maskz_loadu_ps(target[b], dst + 16 * b);
          for (size_t kw = 0; kw < kw_count; ++kw) {
            // Column ow of this tap row feeds input column ow + offset.
            const float* src = rows + kw * ld + oh * ow_count;
            const ptrdiff_t at = first + static_cast<ptrdiff_t>(16 * b) - offset[kw];
            acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tap[kw][b], offset_address(src, at)));
          }
          _mm512_mask_storeu_ps(dst + 16 * b, target[b], acc);
        }
      }
    }
  }
}

}  // namespace

void f32_im2col_plane_avx512(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  if (fast_rows(g)) {
    im2col_rows(g, channels, input, col, ld);
  } else {
    im2col_plane_with<RowAvx512>(g, channels, input, col, ld);
  }
}

void f32_col2im_plane_add_avx512(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  if (fast_rows(g)) {
    col2im_rows(g, channels, col, ld, grad_input);
  } else {
    col2im_plane_add_with<RowAvx512>(g, channels, col, ld, grad_input);
  }
}

}  // namespace kiln
