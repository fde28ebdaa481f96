// The SIMD SpMM kernel, shared by the AVX2 and AVX-512 files through a traits struct S (common/
// f32-vec.h's F32Avx2 / F32Avx512, as for f32-gemm-avx*.cc, plus tail_mask(n): the first min(n,
// kLanes) lanes; used: Vec, Mask, kLanes, zero, broadcast, loadu, load_tail, storeu, store_tail,
// add, max, fmadd). Pixels lie in vector lanes: per stored block, each of its
// bc X rows is loaded once (NV vectors) and each of its br weights is broadcast once and
// multiplied into NV accumulators. One block-row (br outputs) keeps br x NV accumulators in
// registers while it walks its blocks; with br == 1, SETS accumulator sets alternate (block by
// block, or column by column of a 1x4 block) so that enough independent FMA chains hide the FMA
// latency. The X columns of one tile (K rows of NV vectors) should fit in L1: they are re-read by
// every block-row.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/simd.h"
#include "sparse/sparse-ukernel.h"

namespace kiln {
namespace spmm_detail {

// LDX: X's row stride when known at compile time (the contiguous tile copy), else 0 (a.ldx).
template <class S, int BR, int BC, int NV, int SETS, bool MASKED, size_t LDX = 0>
inline void block_row(const F32SpmmArgs& a, size_t rb, size_t j, typename S::Mask mask) {
  using V = typename S::Vec;
  const size_t ldx = LDX ? LDX : a.ldx;
  constexpr int kSets = SETS;
  static_assert(BC == 1 || BC % SETS == 0, "a 1x4 block spreads its columns over the sets");
  V acc[kSets][BR][NV];
  #pragma GCC unroll 16
  for (int s = 0; s < kSets; ++s)
    #pragma GCC unroll 16
    for (int r = 0; r < BR; ++r)
      #pragma GCC unroll 16
      for (int v = 0; v < NV; ++v) acc[s][r][v] = S::zero();

  const uint32_t b_begin = a.row_ptr[rb], b_end = a.row_ptr[rb + 1];
  const float* xj = a.x + j;
  const float* w = a.values + static_cast<size_t>(b_begin) * (BR * BC);
  auto load_row = [&](const float* xr, V* xv) {
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      if (MASKED && v == NV - 1) {
        xv[v] = S::load_tail(xr + v * S::kLanes, mask);
      } else {
        xv[v] = S::loadu(xr + v * S::kLanes);
      }
    }
  };
  auto add_block = [&](int set, const float* wb, const float* xr) {
    #pragma GCC unroll 16
    for (int c = 0; c < BC; ++c) {
      V xv[NV];
      load_row(xr + c * ldx, xv);
      const int s = (kSets > 1 && BC > 1) ? c % kSets : set;
      #pragma GCC unroll 16
      for (int r = 0; r < BR; ++r) {
        const V wv = S::broadcast(wb + r * BC + c);
        #pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[s][r][v] = S::fmadd(wv, xv[v], acc[s][r][v]);
      }
    }
  };
  uint32_t b = b_begin;
  if (kSets > 1 && BC == 1) {
    // kSets blocks per step, one per accumulator set.
    for (; b + kSets <= b_end; b += kSets, w += kSets * BR * BC) {
      #pragma GCC unroll 16
      for (int s = 0; s < kSets; ++s) add_block(s, w + s * BR * BC, xj + static_cast<size_t>(a.col[b + s]) * ldx);
    }
  }
  for (; b < b_end; ++b, w += BR * BC) add_block(0, w, xj + static_cast<size_t>(a.col[b]) * ldx);

  const size_t row0 = rb * BR;
  const size_t valid = a.m - row0 < static_cast<size_t>(BR) ? a.m - row0 : static_cast<size_t>(BR);
  #pragma GCC unroll 16
  for (int r = 0; r < BR; ++r) {
    if (static_cast<size_t>(r) >= valid) break;
    const V bias = a.bias ? S::set1(a.bias[row0 + r]) : S::zero();
    float* yr = a.y + (row0 + r) * a.ldy + j;
    #pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
      V out = acc[0][r][v];
      #pragma GCC unroll 16
      for (int s = 1; s < kSets; ++s) out = S::add(out, acc[s][r][v]);
      out = S::add(out, bias);
      if (a.relu) out = S::max(out, S::zero());
      if (MASKED && v == NV - 1) {
        S::store_tail(yr + v * S::kLanes, mask, out);
      } else {
        S::storeu(yr + v * S::kLanes, out);
      }
    }
  }
}

// Columns in tiles of NV vectors (then single vectors, then one masked vector), each tile through
// every block-row while its X columns are in cache.
template <class S, int BR, int BC, int NV, int SETS>
void spmm(const F32SpmmArgs& args) {
  constexpr size_t kTile = NV * S::kLanes;
  const typename S::Mask full = S::tail_mask(S::kLanes);
  size_t j = 0;
  if (args.n >= 2 * kTile && args.k > 0) {
    // Full tiles run on a copy of their X columns, contiguous (row k at k * kTile; only the rows
    // some block reads are copied): the copy loop's independent loads fetch X's far-apart rows
    // with far more misses in flight than the FMA loop would, and the tile then stays in L1 for
    // every block-row.
    std::unique_ptr<float[]> buf(new float[args.k * kTile + 16]);
    float* tile = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.get()) + 63) & ~uintptr_t{63});
    F32SpmmArgs a = args;
    a.x = tile;
    a.ldx = kTile;
    for (; j + kTile <= args.n; j += kTile) {
      const float* src = args.x + j;
      for (size_t u = 0; u < args.used_k_count; ++u) {
        const size_t k = args.used_k[u];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) S::storeu(tile + k * kTile + v * S::kLanes, S::loadu(src + k * args.ldx + v * S::kLanes));
      }
      a.y = args.y + j;
      for (size_t rb = a.rb_begin; rb < a.rb_end; ++rb) block_row<S, BR, BC, NV, SETS, false, kTile>(a, rb, 0, full);
    }
  }
  const F32SpmmArgs& a = args;
  for (; j + kTile <= a.n; j += kTile) {
    for (size_t rb = a.rb_begin; rb < a.rb_end; ++rb) block_row<S, BR, BC, NV, SETS, false>(a, rb, j, full);
  }
  for (; j + S::kLanes <= a.n; j += S::kLanes) {
    for (size_t rb = a.rb_begin; rb < a.rb_end; ++rb) block_row<S, BR, BC, 1, SETS, false>(a, rb, j, full);
  }
  if (j < a.n) {
    const typename S::Mask tail = S::tail_mask(a.n - j);
    for (size_t rb = a.rb_begin; rb < a.rb_end; ++rb) block_row<S, BR, BC, 1, SETS, true>(a, rb, j, tail);
  }
}

}  // namespace spmm_detail
}  // namespace kiln
