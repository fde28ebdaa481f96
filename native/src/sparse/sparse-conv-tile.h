// The SIMD direct sparse convolution kernel, shared by the AVX2 and AVX-512 files through a traits
// struct S (common/f32-vec.h's F32Avx2 / F32Avx512 plus tail_mask(n): the first min(n, kLanes)
// lanes). Output positions lie in vector lanes. A register tile is BR output channels x NV vectors
// of consecutive positions: per stored block, each of its NV input vectors is loaded once (one
// unaligned load at the block's offset) and multiplied into BR accumulators by the block's BR
// broadcast weights. The accumulators start at the bias and leave through ReLU once, so a channel's
// positions are written exactly once. Position tiles are the outer loop so that the input rows one
// tile reads stay in L1 for every group; a whole small plane (MNIST conv2: 141 positions, 9 zmm)
// is one tile, and larger ones are split into tiles of about equal width so that no thin tile pays
// the per-block index and broadcast for one or two vectors.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "common/simd.h"
#include "sparse/sparse-conv-ukernel.h"

namespace kiln {
namespace sparse_conv_detail {

// (args, first position, valid lanes of the last vector).
using TileFn = void (*)(const F32SparseConvArgs&, size_t, size_t);

// Positions [p, p + (NV - 1) * kLanes + last_lanes) of every group (the last vector masked when TAIL).
template <class S, int BR, int NV, bool TAIL>
void tile(const F32SparseConvArgs& a, size_t p, size_t last_lanes) {
  using V = typename S::Vec;
  constexpr size_t L = S::kLanes;
  const typename S::Mask last = S::tail_mask(last_lanes);
  const float* xp = a.x + p;
  auto load = [&](const float* src, int v) {
    if (TAIL && v == NV - 1) return S::load_tail(src + v * L, last);
    return S::loadu(src + v * L);
  };
  for (size_t g = a.g_begin; g < a.g_end; ++g) {
    V acc[BR][NV];
    #pragma GCC unroll 16
    for (int r = 0; r < BR; ++r) {
      const V b = S::broadcast(a.bias + g * BR + r);
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[r][v] = b;
    }
    const uint32_t b_end = a.group_ptr[g + 1];
    const float* w = a.values + static_cast<size_t>(a.group_ptr[g]) * BR;
    for (uint32_t b = a.group_ptr[g]; b < b_end; ++b, w += BR) {
      const float* src = xp + a.offset[b];
      if (BR == 1) {
        const V wv = S::broadcast(w);
        #pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[0][v] = S::fmadd(wv, load(src, v), acc[0][v]);
      } else {
        V xv[NV];
        #pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) xv[v] = load(src, v);
        #pragma GCC unroll 16
        for (int r = 0; r < BR; ++r) {
          const V wv = S::broadcast(w + r);
          #pragma GCC unroll 16
          for (int v = 0; v < NV; ++v) acc[r][v] = S::fmadd(wv, xv[v], acc[r][v]);
        }
      }
    }
    float* y = a.y + (g - a.g_begin) * BR * a.ldy + p;
    #pragma GCC unroll 16
    for (int r = 0; r < BR; ++r) {
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) {
        V out = acc[r][v];
        if (a.relu) out = S::max(out, S::zero());
        if (TAIL && v == NV - 1) {
          S::store_tail(y + r * a.ldy + v * L, last, out);
        } else {
          S::storeu(y + r * a.ldy + v * L, out);
        }
      }
    }
  }
}

template <class S, int BR, bool TAIL, size_t... I>
constexpr std::array<TileFn, sizeof...(I)> tiles_of(std::index_sequence<I...>) {
  return {{&tile<S, BR, static_cast<int>(I) + 1, TAIL>...}};
}

// Positions [0, n) in tiles of at most NVMAX vectors, as equal as the vector count allows; only
// the last vector of the last tile is masked.
template <class S, int BR, int NVMAX>
void conv(const F32SparseConvArgs& a) {
  static constexpr std::array<TileFn, NVMAX> kFull = tiles_of<S, BR, false>(std::make_index_sequence<NVMAX>());
  static constexpr std::array<TileFn, NVMAX> kTail = tiles_of<S, BR, true>(std::make_index_sequence<NVMAX>());
  constexpr size_t L = S::kLanes;
  if (a.n == 0 || a.g_begin >= a.g_end) return;
  const size_t vectors = (a.n + L - 1) / L;
  const size_t tiles = (vectors + NVMAX - 1) / NVMAX;
  const size_t base = vectors / tiles, extra = vectors % tiles;
  size_t p = 0;
  for (size_t t = 0; t < tiles; ++t) {
    const size_t nv = base + (t < extra ? 1 : 0);
    if (t + 1 < tiles) {
      kFull[nv - 1](a, p, L);
    } else {
      const size_t rest = a.n - p - (nv - 1) * L;
      if (rest == L) {
        kFull[nv - 1](a, p, L);
      } else {
        kTail[nv - 1](a, p, rest);
      }
    }
    p += nv * L;
  }
}

// The max pool: 2x2 windows at stride 2 (the CNN default) take the max of the two rows, then of
// neighbouring column pairs (S::max_pairs: the max of lanes 2i and 2i + 1 of lo:hi, in order),
// kLanes outputs per step; any other window takes the scalar pool.
template <class S>
void max_pool(const F32SparseConvPoolArgs& a) {
  if (a.kernel_h != 2 || a.kernel_w != 2 || a.stride_h != 2 || a.stride_w != 2 || a.dilation_h != 1 ||
      a.dilation_w != 1) {
    f32_sparse_conv_max_pool_scalar(a);
    return;
  }
  constexpr size_t L = S::kLanes;
  using V = typename S::Vec;
  // Rows of at most kLanes outputs (SeedCNN's 5 and 6) take one step with masks made once, and
  // no second input vector when the 2 * out_w inputs fit in one.
  if (a.out_w <= L) {
    const size_t in_lo = 2 * a.out_w < L ? 2 * a.out_w : L, in_hi = 2 * a.out_w - in_lo;
    const typename S::Mask m_lo = S::tail_mask(in_lo), m_hi = S::tail_mask(in_hi), m_out = S::tail_mask(a.out_w);
    for (size_t c = 0; c < a.channels; ++c) {
      const float* plane = a.x + c * a.ldx;
      float* out = a.y + c * a.ldy;
      for (size_t py = 0; py < a.out_h; ++py) {
        const float* s0 = plane + 2 * py * a.pitch;
        const float* s1 = s0 + a.pitch;
        const V lo = S::max(S::load_tail(s0, m_lo), S::load_tail(s1, m_lo));
        const V hi = in_hi == 0 ? S::zero() : S::max(S::load_tail(s0 + L, m_hi), S::load_tail(s1 + L, m_hi));
        S::store_tail(out + py * a.out_w, m_out, S::max_pairs(lo, hi));
      }
    }
    return;
  }
  for (size_t c = 0; c < a.channels; ++c) {
    const float* plane = a.x + c * a.ldx;
    float* out = a.y + c * a.ldy;
    for (size_t py = 0; py < a.out_h; ++py) {
      const float* r0 = plane + 2 * py * a.pitch;
      const float* r1 = r0 + a.pitch;
      for (size_t px = 0; px < a.out_w; px += L) {
        const size_t count = a.out_w - px < L ? a.out_w - px : L;
        const size_t in_lo = 2 * count < L ? 2 * count : L, in_hi = 2 * count - in_lo;
        const typename S::Mask m_lo = S::tail_mask(in_lo), m_hi = S::tail_mask(in_hi);
        const float* s0 = r0 + 2 * px;
        const float* s1 = r1 + 2 * px;
        const V lo = S::max(S::load_tail(s0, m_lo), S::load_tail(s1, m_lo));
        const V hi = S::max(S::load_tail(s0 + L, m_hi), S::load_tail(s1 + L, m_hi));
        S::store_tail(out + py * a.out_w + px, S::tail_mask(count), S::max_pairs(lo, hi));
      }
    }
  }
}

}  // namespace sparse_conv_detail
}  // namespace kiln
