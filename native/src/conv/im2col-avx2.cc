// AVX2 whole-plane im2col and col2im for stride-1 rows (other strides take the shared walk).
// vmaskmovps loads read padding lanes as zero without touching memory; masks depend only on the
// kernel column and the 8-column block, so they are built once per call. col2im sums every
// kernel column's contribution to an input row block in a register and stores it once (see the
// AVX-512 file for why).
#include "common/simd.h"

#include "conv/im2col-plane.h"
#include "conv/im2col.h"

namespace kiln {
namespace {

constexpr size_t kMaxBlocks = 16;  // rows up to 128 columns take the fast loops
constexpr size_t kMaxKernelW = 16;

// All-ones in lanes j with lo <= base + j < hi.
inline __m256i lanes(ptrdiff_t base, ptrdiff_t lo, ptrdiff_t hi) {
  const __m256i index = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(base)));
  const __m256i below_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), index);
  const __m256i below_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lo)), index);
  return _mm256_andnot_si256(below_lo, below_hi);
}

// Stores the lanes of `m`: a plain store when the block is whole.
inline void store(float* dst, bool whole, __m256i m, __m256 v) {
  if (whole) {
    _mm256_storeu_ps(dst, v);
  } else {
    _mm256_maskstore_ps(dst, m, v);
  }
}

struct RowAvx2 {
  static void zero(float* dst, size_t n) {
    for (size_t i = 0; i < n; i += 8) store(dst + i, i + 8 <= n, lanes(static_cast<ptrdiff_t>(i), 0, static_cast<ptrdiff_t>(n)), _mm256_setzero_ps());
  }
  static void copy(float* dst, size_t n, const float* row, ptrdiff_t offset, size_t lo, size_t hi) {
    for (size_t i = 0; i < n; i += 8) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const __m256 v = _mm256_maskload_ps(offset_address(row, offset + at), lanes(at, static_cast<ptrdiff_t>(lo), static_cast<ptrdiff_t>(hi)));
      store(dst + i, i + 8 <= n, lanes(at, 0, static_cast<ptrdiff_t>(n)), v);
    }
  }
  static void add(float* row, ptrdiff_t offset, const float* src, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i += 8) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const __m256i m = lanes(at, static_cast<ptrdiff_t>(lo), static_cast<ptrdiff_t>(hi));
      float* target = offset_address(row, offset + at);
      _mm256_maskstore_ps(target, m, _mm256_add_ps(_mm256_maskload_ps(target, m), _mm256_maskload_ps(src + i, m)));
    }
  }
};

bool fast_rows(const Conv2dGeometry& g) {
  return g.stride_w == 1 && g.kernel_w <= kMaxKernelW && (g.out_width + 7) / 8 <= kMaxBlocks &&
         (g.in_width + 7) / 8 < kMaxBlocks;
}

void im2col_rows(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  const size_t ow_count = g.out_width;
  const size_t blocks = (ow_count + 7) / 8;
  const bool whole_last = ow_count % 8 == 0;
  const __m256i store_last = lanes(static_cast<ptrdiff_t>(8 * (blocks - 1)), 0, static_cast<ptrdiff_t>(ow_count));
  for (size_t kw = 0; kw < g.kernel_w; ++kw) {
    const ptrdiff_t dw = static_cast<ptrdiff_t>(kw * g.dilation_w) - static_cast<ptrdiff_t>(g.pad_left);
    const ColumnSpan span = valid_columns(dw, 1, g.in_width, ow_count);
    __m256i load[kMaxBlocks];
    for (size_t b = 0; b < blocks; ++b) {
      load[b] = lanes(static_cast<ptrdiff_t>(8 * b), static_cast<ptrdiff_t>(span.lo), static_cast<ptrdiff_t>(span.hi));
    }
    for (size_t c = 0; c < channels; ++c) {
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        float* dst = col + ((c * g.kernel_h + kh) * g.kernel_w + kw) * ld;
        const ptrdiff_t dh = static_cast<ptrdiff_t>(kh * g.dilation_h) - static_cast<ptrdiff_t>(g.pad_top);
        for (size_t oh = 0; oh < g.out_height; ++oh, dst += ow_count) {
          const ptrdiff_t ih = static_cast<ptrdiff_t>(oh) * static_cast<ptrdiff_t>(g.stride_h) + dh;
          const bool inside = ih >= 0 && ih < static_cast<ptrdiff_t>(g.in_height);
          const float* row = inside ? input + (c * g.in_height + static_cast<size_t>(ih)) * g.in_width : input;
          for (size_t b = 0; b < blocks; ++b) {
            const __m256 v = inside ? _mm256_maskload_ps(offset_address(row, dw + static_cast<ptrdiff_t>(8 * b)), load[b])
                                    : _mm256_setzero_ps();
            store(dst + 8 * b, b + 1 < blocks || whole_last, store_last, v);
          }
        }
      }
    }
  }
}

void col2im_rows(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  const size_t ow_count = g.out_width;
  const size_t kw_count = g.kernel_w;
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
  const size_t blocks = static_cast<size_t>(last - first + 7) / 8;
  __m256i target[kMaxBlocks];
  __m256i tap[kMaxKernelW][kMaxBlocks];
  for (size_t b = 0; b < blocks; ++b) {
    const ptrdiff_t base = first + static_cast<ptrdiff_t>(8 * b);
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
          __m256 acc = _mm256_maskload_ps(dst + 8 * b, target[b]);
          for (size_t kw = 0; kw < kw_count; ++kw) {
            const float* src = rows + kw * ld + oh * ow_count;
            const ptrdiff_t at = first + static_cast<ptrdiff_t>(8 * b) - offset[kw];
            acc = _mm256_add_ps(acc, _mm256_maskload_ps(offset_address(src, at), tap[kw][b]));
          }
          _mm256_maskstore_ps(dst + 8 * b, target[b], acc);
        }
      }
    }
  }
}

}  // namespace

void f32_im2col_plane_avx2(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  if (fast_rows(g)) {
    im2col_rows(g, channels, input, col, ld);
  } else {
    im2col_plane_with<RowAvx2>(g, channels, input, col, ld);
  }
}

void f32_col2im_plane_add_avx2(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  if (fast_rows(g)) {
    col2im_rows(g, channels, col, ld, grad_input);
  } else {
    col2im_plane_add_with<RowAvx2>(g, channels, col, ld, grad_input);
  }
}

}  // namespace kiln
