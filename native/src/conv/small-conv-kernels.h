// What the per-ISA small-patch convolution files (small-conv-avx2.cc, small-conv-avx512.cc) share:
// the stores after the sums (bias, ReLU, the fused 2x2 pool with or without winners), the split
// of output channels into blocks, the walk over column segments and the kernel table. Each file
// includes this after common/simd.h and instantiates it with its types (anonymous namespace: one
// copy per translation unit, compiled with that file's flags); the sums, whose input vectors live
// in memory on AVX2 and in registers on AVX-512, stay in the files. `V` supplies:
//   V::kLanes, V::Vec, V::Mask (store lanes), V::Take (lanes a select takes), V::Winner (indices)
//   V::zero(), V::broadcast(p), V::add, V::max, V::store(p, mask, v)
//   V::takes_over(v, best)         v > best, or v NaN over a number
//   V::select(a, take, b)          b where `take`, else a
//   V::any_unordered(a0, a1, a2, a3)  lanes where a0, a1 or a2, a3 hold a NaN
//   V::winner(where), V::select_winner(w, take, where, tap), V::store_winner(p, mask, w)
// and the file defines the two templates declared below (after including this), which the entry
// points and the kernel table instantiate: plain_rows (NR output rows of a segment, every channel)
// and pooled_image (one image with the fused pool).
#pragma once
#include <cstddef>
#include <cstdint>

#include "conv/small-conv.h"

namespace kiln {
namespace {

template <int N>
struct Channels {
  static constexpr int value = N;
};

// block(Channels<NC>(), o) over the output channels: blocks of NC, then one of what is left.
template <int NC, class Block>
inline void channel_tail(size_t left, size_t o, const Block& block) {
  if constexpr (NC > 0) {
    if (left == NC) {
      block(Channels<NC>(), o);
    } else {
      channel_tail<NC - 1>(left, o, block);
    }
  }
}

template <int NC, class Block>
inline void for_channel_blocks(size_t count, const Block& block) {
  size_t o = 0;
  for (; o + NC <= count; o += NC) block(Channels<NC>(), o);
  channel_tail<NC - 1>(count - o, o, block);
}

// acc[r][j] = output row r of channel o + j: bias, ReLU, the segment's lanes stored.
template <class V, int NR, int NC>
__attribute__((always_inline)) inline void plain_store(const SmallConvArgs& a, const typename V::Vec (&acc)[NR][NC],
                                                       size_t o, float* out, typename V::Mask store) {
  const size_t plane = a.out_height * a.out_width;
  const typename V::Vec zero = V::zero();
#pragma GCC unroll 8
  for (int j = 0; j < NC; ++j) {
    const typename V::Vec b = V::broadcast(a.bias + o + j);
#pragma GCC unroll 8
    for (int r = 0; r < NR; ++r) {
      typename V::Vec y = V::add(acc[r][j], b);
      // max(0, y) returns y when y is NaN, as the GEMM epilogue does.
      if (a.relu) y = V::max(zero, y);
      V::store(out + (o + j) * plane + r * a.out_width, store, y);
    }
  }
}

// acc[2i + j][c] = the convolution output at row 2y + i, column 2x + j of channel o + c, for the
// pooled pixels (y, x) in lanes: pooled, at `pooled_at` of each channel's pooled plane, and with
// INDICES each winner's offset in the convolution plane (`where`: the top-left tap's).
template <class V, int NC, bool INDICES>
__attribute__((always_inline)) inline void pooled_store(const SmallConvArgs& a, const typename V::Vec (&acc)[4][NC],
                                                        size_t o, size_t pooled_at, typename V::Winner where,
                                                        float* output, int32_t* indices, typename V::Mask store) {
  const size_t pooled_plane = (a.out_height / 2) * (a.out_width / 2);
  const typename V::Vec zero = V::zero();
#pragma GCC unroll 4
  for (int j = 0; j < NC; ++j) {
    const typename V::Vec b = V::broadcast(a.bias + o + j);
    const size_t at = (o + j) * pooled_plane + pooled_at;
    if constexpr (INDICES) {
      // Each window's taps in max_pool2d_forward's order, after bias and ReLU: ties and NaNs pick
      // the same winner.
      typename V::Vec best = V::add(acc[0][j], b);
      if (a.relu) best = V::max(zero, best);
      typename V::Winner winner = where;
#pragma GCC unroll 4
      for (int t = 1; t < 4; ++t) {
        typename V::Vec v = V::add(acc[t][j], b);
        if (a.relu) v = V::max(zero, v);
        const typename V::Take take = V::takes_over(v, best);
        best = V::select(best, take, v);
        const int tap = static_cast<int>((t / 2) * a.out_width + t % 2);
        winner = V::select_winner(winner, take, where, tap);
      }
      V::store(output + at, store, best);
      V::store_winner(indices + at, store, winner);
    } else {
      // Bias and ReLU are monotone, so the largest sum gives the pooled value; the window's order
      // only decides which of equal values wins, and equal floats are the same bits here (a sum
      // that starts at +0 never is -0). MAXPS drops a NaN in its first operand: where a window
      // holds one, the sum in window order carries its first NaN instead, as the taps' order would.
      const typename V::Vec a0 = acc[0][j], a1 = acc[1][j], a2 = acc[2][j], a3 = acc[3][j];
      typename V::Vec m = V::max(V::max(a1, a0), V::max(a3, a2));
      m = V::select(m, V::any_unordered(a0, a1, a2, a3), V::add(V::add(a0, a1), V::add(a2, a3)));
      typename V::Vec y = V::add(m, b);
      if (a.relu) y = V::max(zero, y);
      V::store(output + at, store, y);
    }
  }
}

// Output rows [oh, oh + NR), columns [x0, x0 + n) (n <= the file's lanes), every channel.
template <int CIN, int KH, int KW, int NR>
void plain_rows(const SmallConvArgs& a, const float* input, size_t oh, size_t x0, size_t n, float* output);
// One image with the fused 2x2/2 max pool, winners' indices with INDICES.
template <int CIN, int KH, int KW, bool INDICES>
void pooled_image(const SmallConvArgs& a, const float* input, float* output, int32_t* indices);

// One image, L-column segments, two rows at a time (8 FMA chains with 4 channels).
template <size_t L, int CIN, int KH, int KW>
void plain_image(const SmallConvArgs& a, const float* input, float* output) {
  for (size_t x0 = 0; x0 < a.out_width; x0 += L) {
    const size_t n = a.out_width - x0 < L ? a.out_width - x0 : L;
    size_t oh = 0;
    for (; oh + 2 <= a.out_height; oh += 2) plain_rows<CIN, KH, KW, 2>(a, input, oh, x0, n, output);
    if (oh < a.out_height) plain_rows<CIN, KH, KW, 1>(a, input, oh, x0, n, output);
  }
}

template <size_t L, int CIN, int KH, int KW>
constexpr SmallConvKernels small_conv_kernels() {
  return {plain_image<L, CIN, KH, KW>, pooled_image<CIN, KH, KW, false>, pooled_image<CIN, KH, KW, true>};
}

// The file's entry points, on its kernel table (KILN_SMALL_CONV_SHAPES order, run_small_conv's),
// for segments of L columns.
template <size_t L>
struct SmallConvEntries {
#define KILN_SMALL_CONV_ENTRY(c, h, w) small_conv_kernels<L, c, h, w>(),
  static constexpr SmallConvKernels kTable[] = {KILN_SMALL_CONV_SHAPES(KILN_SMALL_CONV_ENTRY)};
#undef KILN_SMALL_CONV_ENTRY
  static void image(const SmallConvArgs& args, const float* input, float* output) {
    run_small_conv(kTable, args, input, output, false, nullptr);
  }
  static void max_pool_image(const SmallConvArgs& args, const float* input, float* output, int32_t* indices) {
    run_small_conv(kTable, args, input, output, true, indices);
  }
};

}  // namespace
}  // namespace kiln
