// The int8 micro-kernels' store of a finished tile and their peak loop, shared by the per-ISA
// int8 GEMM files: each includes this after common/simd.h and its epilogue header
// (quant/requantize-avx2.h or -avx512.h) and instantiates it with its own types (anonymous
// namespace: one copy per translation unit, compiled with that file's flags).
//
// The tile store, with `S` supplying:
//   S::Acc                       the int32 accumulator vector
//   S::kPairs                    accumulators hold k-pair sums, two per output vector (vpmaddwd
//                                kernels), finished by S::add_pairs(lo, hi); else one each (vpdpbusd)
//   S::store<OUT>(t, r, u, x)    output vector u of row r through the output stage OUT
//   S::kRowU8Vectors             0, or the output vectors S::store_row_u8(t, r, x) stores at once:
//                                a whole row of a full-width tile to uint8 (packed, one store)
//
// The peak loop, with `P` supplying:
//   P::kChains, P::kMacsPerStep  independent chains; multiply-adds per chain step
//   P::Acc, P::Operands          the accumulator vector; the step's loop-invariant sources
//   P::start(i), P::operands()   chain i's start value; the sources (hidden from the optimiser)
//   P::step(acc, ops, i)         one step of chain i (inline asm: see the ISA files)
//   P::add(a, b), P::sink(v)     lane-wise add; a scalar that depends on every chain
#pragma once
#include <cstddef>

#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {

// Output vector u of a row's accumulators: the one accumulator, or the sum of its pair.
template <class S, int NACC>
inline typename S::Acc s8_output_vector(const typename S::Acc (&row)[NACC], int u) {
  if constexpr (S::kPairs) {
    return S::add_pairs(row[2 * u], row[2 * u + 1]);
  } else {
    return row[u];
  }
}

template <class S, S8Output OUT, int R, int NACC>
void s8_store_tile(const S8GemmTile& t, const typename S::Acc (&acc)[R][NACC]) {
  constexpr int NOUT = S::kPairs ? NACC / 2 : NACC;
  if constexpr (OUT == S8Output::kU8 && S::kRowU8Vectors == NOUT) {
    if (t.nr == static_cast<size_t>(NOUT) * (sizeof(typename S::Acc) / sizeof(int32_t))) {
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        typename S::Acc x[NOUT];
#pragma GCC unroll 4
        for (int u = 0; u < NOUT; ++u) x[u] = s8_output_vector<S>(acc[r], u);
        S::store_row_u8(t, r, x);
      }
      return;
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int u = 0; u < NOUT; ++u) S::template store<OUT>(t, r, u, s8_output_vector<S>(acc[r], u));
  }
}

// The tile's output stage, chosen once per tile.
template <class S, int R, int NACC>
inline void s8_store(const S8GemmTile& t, const typename S::Acc (&acc)[R][NACC]) {
  switch (t.out) {
    case S8Output::kInt32: s8_store_tile<S, S8Output::kInt32>(t, acc); break;
    case S8Output::kU8: s8_store_tile<S, S8Output::kU8>(t, acc); break;
    case S8Output::kF32: s8_store_tile<S, S8Output::kF32>(t, acc); break;
  }
}

// The kernel's inner step on registers, kChains chains; returns the multiply-adds done.
template <class P>
double s8_gemm_peak(size_t iterations) {
  typename P::Acc acc[P::kChains];
#pragma GCC unroll 24
  for (int i = 0; i < P::kChains; ++i) acc[i] = P::start(i);
  const typename P::Operands ops = P::operands();
  for (size_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < P::kChains; ++i) P::step(acc[i], ops, i);
  }
  typename P::Acc sum = acc[0];
#pragma GCC unroll 24
  for (int i = 1; i < P::kChains; ++i) sum = P::add(sum, acc[i]);
  volatile int sink = P::sink(sum);
  (void)sink;
  return static_cast<double>(iterations) * P::kChains * P::kMacsPerStep;
}

}  // namespace
}  // namespace kiln
