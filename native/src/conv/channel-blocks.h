// The channel-block kernels (conv/channel-block-plan.h): the depthwise convolution and the max
// pool with channels in lanes, written once over a vector type V and included by the AVX2 and
// AVX-512 files, which compile them with their own flags. V is common/f32-vec.h's F32Avx2 or
// F32Avx512 plus nan_lanes (a bit per NaN lane) and transpose (kLanes rows of kLanes floats).
#pragma once
#include <cstddef>

#include "conv/channel-block-plan.h"

namespace kiln {

// The block's input planes into the interior of the buffer, kLanes pixels at a time. With
// kCheckNan, returns whether any input is NaN (else false).
template <class V, bool kCheckNan>
__attribute__((always_inline)) inline bool channel_block_inputs(const F32ChannelBlockArgs& a) {
  constexpr size_t L = V::kLanes;
  const size_t pixels = a.in_h * a.in_w;
  unsigned nan = 0;
  size_t ih = 0, iw = 0;
  for (size_t p0 = 0; p0 < pixels; p0 += L) {
    const size_t np = pixels - p0 < L ? pixels - p0 : L;
    typename V::Vec r[L];
#pragma GCC unroll 16
    for (size_t c = 0; c < L; ++c) {
      const float* x = a.input + c * a.in_stride + p0;
      r[c] = c >= a.channels ? V::zero() : np == L ? V::loadu(x) : V::load_tail(x, V::first_lanes(np));
      if (kCheckNan) nan |= V::nan_lanes(r[c]);
    }
    V::transpose(r);
    for (size_t j = 0; j < np; ++j) {
      V::storeu(a.buffer + ((ih + a.pad_top) * a.padded_w + iw + a.pad_left) * L, r[j]);
      if (++iw == a.in_w) {
        iw = 0;
        ++ih;
      }
    }
  }
  return nan != 0;
}

// Output pixels kLanes at a time: at[j] points at pixel j's first tap (past the last pixel: the
// last pixel again); combine(acc, at) sums or maxes all the taps into acc; the results are
// transposed into the output planes. combine runs the loop over taps itself, on a local copy of
// the accumulators: with acc passed to a per-tap function GCC kept the array in memory and
// stored every accumulator back to the stack after each tap (16 stores per 16 multiply-adds;
// EfficientNet's 5x5 on 14x14 ran 1.27x slower).
template <class V, class Init, class Combine, class Finish>
__attribute__((always_inline)) inline void channel_block_outputs(const F32ChannelBlockArgs& a, Init init, Combine combine,
                                                                 Finish finish) {
  constexpr size_t L = V::kLanes;
  using Reg = typename V::Vec;
  const size_t pixels = a.out_h * a.out_w;
  const size_t row_step = a.stride_h * a.padded_w * L, col_step = a.stride_w * L;
  size_t oh = 0, ow = 0;  // output pixel q0
  for (size_t q0 = 0; q0 < pixels; q0 += L) {
    const size_t nq = pixels - q0 < L ? pixels - q0 : L;
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
    for (size_t j = 0; j < L; ++j) acc[j] = init();
    combine(acc, at);
#pragma GCC unroll 16
    for (size_t j = 0; j < L; ++j) acc[j] = finish(acc[j]);
    V::transpose(acc);
    for (size_t c = 0; c < a.channels; ++c) {
      float* y = a.output + c * a.out_stride + q0;
      if (nq == L) {
        V::storeu(y, acc[c]);
      } else {
        V::store_tail(y, V::first_lanes(nq), acc[c]);
      }
    }
  }
}

template <class V>
void depthwise_channel_block(const F32ChannelBlockArgs& a) {
  constexpr size_t L = V::kLanes;
  using Reg = typename V::Vec;
  channel_block_inputs<V, false>(a);
  const Reg vb = V::loadu(a.bias), vlo = V::set1(a.lo), vhi = V::set1(a.hi);
  channel_block_outputs<V>(
      a, [&] { return vb; },
      [&](Reg (&acc)[L], const float* const* at) {
        Reg r[L];
#pragma GCC unroll 16
        for (size_t j = 0; j < L; ++j) r[j] = acc[j];
        for (size_t t = 0; t < a.taps; ++t) {
          const Reg wt = V::loadu(a.weight + t * L);
          const size_t off = a.tap_offset[t] * L;
#pragma GCC unroll 16
          for (size_t j = 0; j < L; ++j) r[j] = V::fmadd(wt, V::loadu(at[j] + off), r[j]);
        }
#pragma GCC unroll 16
        for (size_t j = 0; j < L; ++j) acc[j] = r[j];
      },
      // max(bound, v) and min(bound, v) return v when v is NaN.
      [&](Reg v) { return V::min(vhi, V::max(vlo, v)); });
}

// The buffer's border holds -inf. Without a NaN, max(tap, best) in tap order is the planar
// kernel's result bit for bit (max is exact; on equal values, ±0 included, it keeps `best`).
template <class V>
bool max_pool_channel_block(const F32ChannelBlockArgs& a) {
  constexpr size_t L = V::kLanes;
  using Reg = typename V::Vec;
  if (channel_block_inputs<V, true>(a)) return false;
  const Reg lowest = V::set1(-__builtin_inff());
  channel_block_outputs<V>(
      a, [&] { return lowest; },
      [&](Reg (&acc)[L], const float* const* at) {
        Reg r[L];
#pragma GCC unroll 16
        for (size_t j = 0; j < L; ++j) r[j] = acc[j];
        for (size_t t = 0; t < a.taps; ++t) {
          const size_t off = a.tap_offset[t] * L;
#pragma GCC unroll 16
          for (size_t j = 0; j < L; ++j) r[j] = V::max(V::loadu(at[j] + off), r[j]);
        }
#pragma GCC unroll 16
        for (size_t j = 0; j < L; ++j) acc[j] = r[j];
      },
      [](Reg v) { return v; });
  return true;
}

}  // namespace kiln
