// The stride-1 whole-plane im2col / col2im, shared by the per-ISA im2col files: each includes it
// after common/simd.h and instantiates it with its vector type (anonymous namespace: one copy per
// translation unit, compiled with that file's flags). `V` supplies:
//   V::kLanes, V::kMaxBlocks            lanes per vector; blocks of a row the fast loops take
//   V::Mask, V::Vec                     the lane mask and the float vector
//   V::lanes(base, lo, hi)              lanes j with lo <= base + j < hi
//   V::zero(), V::add(a, b)
//   V::gather_even(src, n, dst)         the ISA's f32_gather_even (conv/im2col.h)
//   V::load(mask, p)                    masked load, zero outside the mask (never touches it)
//   V::store(p, whole, mask, v)         masked store (`whole`: every lane is in the mask)
//   V::mask_store(p, mask, v)           masked store
// Masked loads read padding lanes as zero without touching memory. The masks depend only on the
// kernel column and the block, so they are computed once per call, not per row. col2im gathers
// every kernel column's contribution to an input row block in a register and stores it once:
// adding tap by tap would reload what the previous masked store just wrote, which store
// forwarding cannot serve. Other strides and wider rows take im2col-plane.h's walk with
// Row<V>'s row operations.
#pragma once
#include <cstddef>

#include "conv/im2col-plane.h"

namespace kiln {
namespace {

constexpr size_t kIm2colMaxKernelW = 16;

template <class V>
struct Row {
  static constexpr size_t L = V::kLanes;
  static void zero(float* dst, size_t n) {
    for (size_t i = 0; i < n; i += L) {
      V::store(dst + i, i + L <= n, V::lanes(static_cast<ptrdiff_t>(i), 0, static_cast<ptrdiff_t>(n)), V::zero());
    }
  }
  static void copy(float* dst, size_t n, const float* row, ptrdiff_t offset, size_t lo, size_t hi) {
    for (size_t i = 0; i < n; i += L) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const typename V::Vec v =
          V::load(V::lanes(at, static_cast<ptrdiff_t>(lo), static_cast<ptrdiff_t>(hi)), offset_address(row, offset + at));
      V::store(dst + i, i + L <= n, V::lanes(at, 0, static_cast<ptrdiff_t>(n)), v);
    }
  }
  static void gather_even(const float* src, size_t n, float* dst) { V::gather_even(src, n, dst); }
  static void add(float* row, ptrdiff_t offset, const float* src, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i += L) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(i);
      const typename V::Mask m = V::lanes(at, static_cast<ptrdiff_t>(lo), static_cast<ptrdiff_t>(hi));
      float* target = offset_address(row, offset + at);
      V::mask_store(target, m, V::add(V::load(m, target), V::load(m, src + i)));
    }
  }
};

template <class V>
bool fast_rows(const Conv2dGeometry& g) {
  constexpr size_t L = V::kLanes;
  return g.stride_w == 1 && g.kernel_w <= kIm2colMaxKernelW && (g.out_width + L - 1) / L <= V::kMaxBlocks &&
         (g.in_width + L - 1) / L < V::kMaxBlocks;
}

template <class V>
void im2col_rows(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  constexpr size_t L = V::kLanes;
  const size_t ow_count = g.out_width;
  const size_t blocks = (ow_count + L - 1) / L;
  typename V::Mask store[V::kMaxBlocks];
  bool whole[V::kMaxBlocks];
  for (size_t b = 0; b < blocks; ++b) {
    store[b] = V::lanes(static_cast<ptrdiff_t>(L * b), 0, static_cast<ptrdiff_t>(ow_count));
    whole[b] = L * (b + 1) <= ow_count;
  }
  for (size_t kw = 0; kw < g.kernel_w; ++kw) {
    const ptrdiff_t dw = static_cast<ptrdiff_t>(kw * g.dilation_w) - static_cast<ptrdiff_t>(g.pad_left);
    const ColumnSpan span = valid_columns(dw, 1, g.in_width, ow_count);
    typename V::Mask load[V::kMaxBlocks];
    for (size_t b = 0; b < blocks; ++b) {
      load[b] = V::lanes(static_cast<ptrdiff_t>(L * b), static_cast<ptrdiff_t>(span.lo), static_cast<ptrdiff_t>(span.hi));
    }
    for (size_t c = 0; c < channels; ++c) {
      for (size_t kh = 0; kh < g.kernel_h; ++kh) {
        float* dst = col + ((c * g.kernel_h + kh) * g.kernel_w + kw) * ld;
        const ptrdiff_t dh = static_cast<ptrdiff_t>(kh * g.dilation_h) - static_cast<ptrdiff_t>(g.pad_top);
        for (size_t oh = 0; oh < g.out_height; ++oh, dst += ow_count) {
          const ptrdiff_t ih = static_cast<ptrdiff_t>(oh) * static_cast<ptrdiff_t>(g.stride_h) + dh;
          if (ih < 0 || ih >= static_cast<ptrdiff_t>(g.in_height)) {
            for (size_t b = 0; b < blocks; ++b) V::store(dst + L * b, whole[b], store[b], V::zero());
            continue;
          }
          const float* row = input + (c * g.in_height + static_cast<size_t>(ih)) * g.in_width;
          for (size_t b = 0; b < blocks; ++b) {
            const typename V::Vec v = V::load(load[b], offset_address(row, dw + static_cast<ptrdiff_t>(L * b)));
            V::store(dst + L * b, whole[b], store[b], v);
          }
        }
      }
    }
  }
}

template <class V>
void col2im_rows(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  constexpr size_t L = V::kLanes;
  const size_t ow_count = g.out_width;
  const size_t kw_count = g.kernel_w;
  ptrdiff_t offset[kIm2colMaxKernelW];
  ColumnSpan span[kIm2colMaxKernelW];
  // Input columns any tap of a row reaches: [first, last).
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
  const size_t blocks = static_cast<size_t>(last - first + static_cast<ptrdiff_t>(L) - 1) / L;
  // Block b covers input columns first + L b + lane; kernel column kw contributes where the
  // output column (input column - offset) lies in its span.
  typename V::Mask target[V::kMaxBlocks];
  typename V::Mask tap[kIm2colMaxKernelW][V::kMaxBlocks];
  for (size_t b = 0; b < blocks; ++b) {
    const ptrdiff_t base = first + static_cast<ptrdiff_t>(L * b);
    target[b] = V::lanes(base, first, last);
    for (size_t kw = 0; kw < kw_count; ++kw) {
      tap[kw][b] = V::lanes(base - offset[kw], static_cast<ptrdiff_t>(span[kw].lo), static_cast<ptrdiff_t>(span[kw].hi));
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
          typename V::Vec acc = V::load(target[b], dst + L * b);
          for (size_t kw = 0; kw < kw_count; ++kw) {
            // Column ow of this tap row feeds input column ow + offset.
            const float* src = rows + kw * ld + oh * ow_count;
            const ptrdiff_t at = first + static_cast<ptrdiff_t>(L * b) - offset[kw];
            acc = V::add(acc, V::load(tap[kw][b], offset_address(src, at)));
          }
          V::mask_store(dst + L * b, target[b], acc);
        }
      }
    }
  }
}

// The two entry points of an ISA file: the fast rows where they fit, else the shared walk.
template <class V>
void im2col_plane(const Conv2dGeometry& g, size_t channels, const float* input, float* col, size_t ld) {
  if (fast_rows<V>(g)) {
    im2col_rows<V>(g, channels, input, col, ld);
  } else {
    im2col_plane_with<Row<V>>(g, channels, input, col, ld);
  }
}

template <class V>
void col2im_plane_add(const Conv2dGeometry& g, size_t channels, const float* col, size_t ld, float* grad_input) {
  if (fast_rows<V>(g)) {
    col2im_rows<V>(g, channels, col, ld, grad_input);
  } else {
    col2im_plane_add_with<Row<V>>(g, channels, col, ld, grad_input);
  }
}

}  // namespace
}  // namespace kiln
