// AVX-512BW int8 micro-kernel (CPUs without VNNI): 6 rows x 32 columns, exact.
// vpmaddubsw would add two u8 x s8 products into a saturating int16 (255*-128*2 = -65280 does not
// fit): the classic int8 accuracy bug. Instead both operands are widened to int16 (A at packing
// time, B with vpmovsxbw from the packed bytes) and vpmaddwd adds pairs of exact int16 products
// into int32 lanes. Per k group a 16-column panel becomes 2 vectors of 8 columns x 4 k; lane
// 2c + h of a product vector holds column c, k pair h, and the two pair sums of a column are
// added once after the loop.
// GCC 12 warns inside its own headers about _mm256_undefined_si256(); the value is never used.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "common/simd.h"

#include <cstring>

#include "common/dispatch.h"
#include "common/tile-table.h"
#include "quant/requantize-avx512.h"
#include "s8-gemm/s8-gemm-tile.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {

constexpr int kRows = 6;
constexpr int kPanels = 2;  // 16-column B panels per tile row

// The 4 int16 of A for one row and k group, repeated over the 8 column slots.
inline __m512i broadcast_i16x4(const int16_t* p) {
  long long v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi64(v);
}

// 16 columns from the pair sums of columns 0-7 (`lo`) and 8-15 (`hi`).
inline __m512i add_pairs(__m512i lo, __m512i hi) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  return _mm512_add_epi32(_mm512_permutex2var_epi32(lo, even, hi), _mm512_permutex2var_epi32(lo, odd, hi));
}

// The tile's accumulators hold pair sums: 2 per 16-column output vector (panel).
struct Store {
  using Acc = __m512i;
  static constexpr bool kPairs = true;
  static constexpr int kRowU8Vectors = kPanels;
  static Acc add_pairs(Acc lo, Acc hi) { return kiln::add_pairs(lo, hi); }
  template <S8Output OUT>
  static void store(const S8GemmTile& t, int r, int u, Acc x) {
    avx512_epilogue::store_vector<OUT>(t, static_cast<size_t>(r), static_cast<size_t>(u), x);
  }
  static void store_row_u8(const S8GemmTile& t, int r, const Acc (&x)[kPanels]) {
    avx512_epilogue::store_row_u8<kPanels>(t, static_cast<size_t>(r), x);
  }
};

template <int R, int P>
void tile(const S8GemmTile& t) {
  constexpr int Q = 2 * P;  // 8-column vectors
  __m512i acc[R][Q];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) acc[r][q] = _mm512_setzero_si512();

  const int16_t* a = static_cast<const int16_t*>(t.a);
  const int8_t* b = t.b;
  const size_t ps = t.b_panel_stride;
  for (size_t g = t.groups; g != 0; --g) {
    __m512i w[Q];
#pragma GCC unroll 4
    for (int q = 0; q < Q; ++q) {
      w[q] = _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(b + (q / 2) * ps + (q % 2) * 32)));
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512i av = broadcast_i16x4(a + r * kS8KGroup);
#pragma GCC unroll 4
      for (int q = 0; q < Q; ++q) acc[r][q] = _mm512_add_epi32(acc[r][q], _mm512_madd_epi16(w[q], av));
    }
    a += kRows * kS8KGroup;
    b += kS8GroupBytes;
  }

  s8_store<Store>(t, acc);
}

using TileFn = void (*)(const S8GemmTile&);

struct Tiles {
  template <int R, int P>
  static constexpr TileFn at() { return tile<R, P>; }
};
constexpr TileTable<TileFn, Tiles, kRows, kPanels> kTiles;

}  // namespace

void s8_gemm_6x32_avx512bw(const S8GemmTile& t) { kTiles.at[t.mr - 1][(t.nr + 15) / 16 - 1](t); }

namespace {

// The inner step of the kernel above on registers: vpmaddwd + vpaddd into 24 accumulators, 4 B
// vectors times one A vector. Volatile asm: with intrinsics GCC 12 shares the loop-invariant
// products between chains and spills accumulators, which measures something else.
struct Peak {
  static constexpr int kChains = 24, kMacsPerStep = 32;
  static constexpr int kB = 4;
  using Acc = __m512i;
  struct Operands {
    __m512i w[kB];
    __m512i a;
  };
  static Acc start(int i) { return _mm512_set1_epi32(i); }
  static Operands operands() {
    Operands o;
#pragma GCC unroll 4
    for (int q = 0; q < kB; ++q) o.w[q] = _mm512_set1_epi32(0x00030004 + q);
    o.a = _mm512_set1_epi32(0x00010002);
    return o;
  }
  static void step(Acc& acc, const Operands& o, int i) {
    __m512i t;
    __asm__ volatile("vpmaddwd %[w], %[a], %[t]\n\tvpaddd %[t], %[acc], %[acc]"
                     : [acc] "+v"(acc), [t] "=&v"(t)
                     : [a] "v"(o.a), [w] "v"(o.w[i % kB]));
  }
  static Acc add(Acc a, Acc b) { return _mm512_add_epi32(a, b); }
  static int sink(Acc v) { return _mm512_reduce_add_epi32(v); }
};

}  // namespace

double s8_gemm_peak_avx512bw(size_t iterations) { return s8_gemm_peak<Peak>(iterations); }

void fill_s8_gemm_avx512(DispatchTable* table) {
  S8GemmKernels& k = table->s8_gemm;
  // A CPU with AVX-VNNI but no AVX512-VNNI keeps the VEX VNNI kernels chosen at the avx2 level.
  if (k.name && std::strcmp(k.name, "avxvnni") == 0) return;
  k = {"avx512bw", kRows, 16 * kPanels, S8ALayout::kI16, s8_gemm_6x32_avx512bw, s8_gemm_peak_avx512bw};
}

}  // namespace kiln
