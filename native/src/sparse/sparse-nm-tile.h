// The SIMD N:M SpMM kernel, shared by the AVX2 and AVX-512 files through a traits struct S (as
// sparse-tile.h: Vec, Mask, kLanes, zero, set1, broadcast, loadu, load_tail, storeu, store_tail,
// add, max, fmadd, tail_mask). Pixels lie in vector lanes. Per output row, NV vectors of pixels
// x 2 accumulator sets; per group the metadata word is read once and each of its N kept values is
// one broadcast weight times the X row its index decodes to ((cg * M + idx) * spatial + p), the
// kept values alternating between the two sets (two groups per step, so that N = 1 alternates
// too) for independent FMA chains. M and N are template parameters: the decode (shift and mask
// per index) and the N loop unroll, with no per-group count. Full tiles of columns run on a
// contiguous copy of their X rows that stays in L1 across all rows (as sparse-tile.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/simd.h"
#include "sparse/sparse-nm-ukernel.h"

namespace kiln {
namespace nm_detail {

template <int M, int N>
inline uint32_t read_word(const uint8_t* meta) {
  constexpr int kBits = M == 8 ? 3 : 2;
  constexpr int kBytes = (N * kBits + 7) / 8;
  uint32_t word = meta[0];
  if (kBytes > 1) word |= static_cast<uint32_t>(meta[1]) << 8;
  if (kBytes > 2) word |= static_cast<uint32_t>(meta[2]) << 16;
  return word;
}

template <class S, int M, int N, int NV, bool MASKED, size_t LDX = 0>
inline void row(const F32NmSpmmArgs& a, size_t r, size_t j, typename S::Mask mask) {
  using V = typename S::Vec;
  constexpr int kBits = M == 8 ? 3 : 2;
  constexpr int kBytes = (N * kBits + 7) / 8;
  const size_t ldx = LDX ? LDX : a.ldx;
  V acc[2][NV];
  #pragma GCC unroll 16
  for (int s = 0; s < 2; ++s)
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) acc[s][v] = S::zero();
  const size_t cgroups = a.channel_groups, spatial = a.spatial;
  const size_t groups = spatial * cgroups;
  const float* w = a.values + r * groups * N;
  const uint8_t* meta = a.meta + r * groups * kBytes;
  const float* xj = a.x + j;
  // X row step between consecutive channels, and between channel groups.
  const size_t cstride = spatial * ldx, gstride = M * cstride;

  // Forced inline: `set` must fold to a constant, or acc[set] would live in memory.
  auto add = [&](int set, const float* wv, const float* xr) __attribute__((always_inline)) {
    const V b = S::broadcast(wv);
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      V xv;
      if (MASKED && v == NV - 1) {
        xv = S::load_tail(xr + v * S::kLanes, mask);
      } else {
        xv = S::loadu(xr + v * S::kLanes);
      }
      acc[set][v] = S::fmadd(b, xv, acc[set][v]);
    }
  };
  // Group: its N kept values, the i-th into set (first + i) % 2.
  auto add_group = [&](int first, const float* wg, const uint8_t* mg, const float* xg) __attribute__((always_inline)) {
    const uint32_t word = read_word<M, N>(mg);
    #pragma GCC unroll 8
    for (int i = 0; i < N; ++i) {
      const uint32_t idx = (word >> (i * kBits)) & (M - 1);
      add((first + i) & 1, wg + i, xg + idx * cstride);
    }
  };
  for (size_t p = 0; p < spatial; ++p) {
    const float* xg = xj + p * ldx;
    size_t cg = 0;
    for (; cg + 2 <= cgroups; cg += 2, w += 2 * N, meta += 2 * kBytes, xg += 2 * gstride) {
      add_group(0, w, meta, xg);
      add_group(N & 1, w + N, meta + kBytes, xg + gstride);
    }
    if (cg < cgroups) {
      add_group(0, w, meta, xg);
      w += N;
      meta += kBytes;
    }
  }

  const V bias = a.bias ? S::set1(a.bias[r]) : S::zero();
  float* yr = a.y + r * a.ldy + j;
  #pragma GCC unroll 16
  for (int v = 0; v < NV; ++v) {
    V out = S::add(S::add(acc[0][v], acc[1][v]), bias);
    if (a.relu) out = S::max(out, S::zero());
    if (MASKED && v == NV - 1) {
      S::store_tail(yr + v * S::kLanes, mask, out);
    } else {
      S::storeu(yr + v * S::kLanes, out);
    }
  }
}

template <class S, int M, int N, int NV>
void spmm(const F32NmSpmmArgs& args) {
  constexpr size_t kTile = NV * S::kLanes;
  const typename S::Mask full = S::tail_mask(S::kLanes);
  size_t j = 0;
  if (args.n >= 2 * kTile && args.k > 0) {
    // Contiguous copy of the tile's X rows (all K: an N:M layer reads every channel of most
    // positions), reused by every row while it stays in L1 / L2.
    std::unique_ptr<float[]> buf(new float[args.k * kTile + 16]);
    float* tile = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.get()) + 63) & ~uintptr_t{63});
    F32NmSpmmArgs a = args;
    a.x = tile;
    a.ldx = kTile;
    for (; j + kTile <= args.n; j += kTile) {
      const float* src = args.x + j;
      for (size_t k = 0; k < args.k; ++k) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) S::storeu(tile + k * kTile + v * S::kLanes, S::loadu(src + k * args.ldx + v * S::kLanes));
      }
      a.y = args.y + j;
      for (size_t r = a.r_begin; r < a.r_end; ++r) row<S, M, N, NV, false, kTile>(a, r, 0, full);
    }
  }
  const F32NmSpmmArgs& a = args;
  for (; j + kTile <= a.n; j += kTile) {
    for (size_t r = a.r_begin; r < a.r_end; ++r) row<S, M, N, NV, false>(a, r, j, full);
  }
  for (; j + S::kLanes <= a.n; j += S::kLanes) {
    for (size_t r = a.r_begin; r < a.r_end; ++r) row<S, M, N, 1, false>(a, r, j, full);
  }
  if (j < a.n) {
    const typename S::Mask tail = S::tail_mask(a.n - j);
    for (size_t r = a.r_begin; r < a.r_end; ++r) row<S, M, N, 1, true>(a, r, j, tail);
  }
}

// Fills a table's M = 4 and M = 8 entries with spmm<S, M, N, NV>.
template <class S, int NV>
void fill(F32NmSpmmKernels* k) {
  k->m4[1] = spmm<S, 4, 1, NV>;
  k->m4[2] = spmm<S, 4, 2, NV>;
  k->m4[3] = spmm<S, 4, 3, NV>;
  k->m8[1] = spmm<S, 8, 1, NV>;
  k->m8[2] = spmm<S, 8, 2, NV>;
  k->m8[3] = spmm<S, 8, 3, NV>;
  k->m8[4] = spmm<S, 8, 4, NV>;
  k->m8[5] = spmm<S, 8, 5, NV>;
  k->m8[6] = spmm<S, 8, 6, NV>;
  k->m8[7] = spmm<S, 8, 7, NV>;
  k->pixel_tile = NV * S::kLanes;
}

}  // namespace nm_detail
}  // namespace kiln
