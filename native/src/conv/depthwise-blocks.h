// The channels-in-lanes depthwise kernel (F32DepthwiseBlockArgs in conv/conv-ukernel.h), written
// once over a vector type V and included by the AVX2 and AVX-512 files, which compile it with their
// own flags. V provides Reg, kLanes, zero, set1, load, store, fmadd, clamp, transpose (kLanes rows
// of kLanes floats), load_first / store_first (the first n lanes; the others read as zero / left
// alone).
//
// Why lanes hold channels here when the planar kernels hold pixels: on MobileNet's late planes
// (14x14, 7x7) and at stride 2 the planar kernels spend most of their time splitting and copying
// short rows, and a 7-wide row leaves most lanes idle. With channels in lanes every lane is a real
// output at any plane size or stride, and the two transposes cost less than those row moves.
#pragma once
#include <cstddef>

#include "conv/conv-ukernel.h"

namespace kiln {

template <class V>
__attribute__((always_inline)) inline void depthwise_block_inputs(const F32DepthwiseBlockArgs& a) {
  constexpr size_t L = V::kLanes;
  const size_t pixels = a.in_h * a.in_w;
  size_t ih = 0, iw = 0;
  for (size_t p0 = 0; p0 < pixels; p0 += L) {
    const size_t np = pixels - p0 < L ? pixels - p0 : L;
    typename V::Reg r[L];
#pragma GCC unroll 16
    for (size_t c = 0; c < L; ++c) r[c] = c < a.channels ? V::load_first(a.input + c * a.in_stride + p0, np) : V::zero();
    V::transpose(r);
    for (size_t j = 0; j < np; ++j) {
      V::store(a.buffer + ((ih + a.pad_top) * a.padded_w + iw + a.pad_left) * L, r[j]);
      if (++iw == a.in_w) {
        iw = 0;
        ++ih;
      }
    }
  }
}

template <class V>
void depthwise_channel_block(const F32DepthwiseBlockArgs& a) {
  constexpr size_t L = V::kLanes;
  using Reg = typename V::Reg;
  depthwise_block_inputs<V>(a);
  const Reg vb = V::load(a.bias), vlo = V::set1(a.lo), vhi = V::set1(a.hi);
  const size_t pixels = a.out_h * a.out_w;
  const size_t row_step = a.stride_h * a.padded_w * L, col_step = a.stride_w * L;
  size_t oh = 0, ow = 0;  // output pixel q0
  for (size_t q0 = 0; q0 < pixels; q0 += L) {
    const size_t nq = pixels - q0 < L ? pixels - q0 : L;
    // Where each of the L pixels' first tap reads (past the last pixel: the last pixel again).
    const float* at[L];
    size_t h = oh, w = ow;
    for (size_t j = 0; j < L; ++j) {
      at[j] = a.buffer + h * row_step + w * col_step;
      if (j + 1 < nq && ++w == a.out_w) {
        w = 0;
        ++h;
      }
    }
    oh = h;
    ow = w + 1;
    if (ow == a.out_w) {
      ow = 0;
      ++oh;
    }
    Reg acc[L];
#pragma GCC unroll 16
    for (size_t j = 0; j < L; ++j) acc[j] = vb;
    for (size_t t = 0; t < a.taps; ++t) {
      const Reg wt = V::load(a.weight + t * L);
      const size_t off = a.tap_offset[t] * L;
#pragma GCC unroll 16
      for (size_t j = 0; j < L; ++j) acc[j] = V::fmadd(wt, V::load(at[j] + off), acc[j]);
    }
#pragma GCC unroll 16
    for (size_t j = 0; j < L; ++j) acc[j] = V::clamp(vlo, vhi, acc[j]);
    V::transpose(acc);
    for (size_t c = 0; c < a.channels; ++c) V::store_first(a.output + c * a.out_stride + q0, acc[c], nq);
  }
}

}  // namespace kiln
