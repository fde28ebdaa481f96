// AVX2 int8 micro-kernel: 6 rows x 8 columns, exact.
// vpmaddubsw would add two u8 x s8 products into a saturating int16 (255*-128*2 = -65280 does not
// fit): the classic int8 accuracy bug, which ONNX Runtime dodges by asking for 7-bit weights.
// Instead both operands are widened to int16 (A at packing time, B with vpmovsxbw from the packed
// bytes) and vpmaddwd adds pairs of exact int16 products into int32 lanes. A k group of 8
// columns becomes 2 vectors of 4 columns x 4 k; lane 2c + h holds column c, k pair h, and the
// two pair sums of a column are added once after the loop. 12 accumulators + 2 B + 1 A fill the
// 16 ymm registers.
#include "common/simd.h"

#include <cstring>

#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "quant/requantize-avx2.h"
#include "s8-gemm/s8-gemm-tile.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {

constexpr int kRows = 6;
constexpr size_t kCols = 8;

// The 4 int16 of A for one row and k group, repeated over the 4 column slots.
inline __m256i broadcast_i16x4(const int16_t* p) {
  long long v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi64x(v);
}

// Columns 0-7 from the pair sums of columns 0-3 (`lo`) and 4-7 (`hi`).
inline __m256i add_pairs(__m256i lo, __m256i hi) {
  // hadd works within 128-bit lanes: [c0 c1 c4 c5 | c2 c3 c6 c7]; the permute restores order.
  return _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xD8);
}

// The tile's accumulators hold pair sums: 2 per 8-column output vector.
struct Store {
  using Acc = __m256i;
  static constexpr bool kPairs = true;
  static constexpr int kRowU8Vectors = 0;
  static Acc add_pairs(Acc lo, Acc hi) { return kiln::add_pairs(lo, hi); }
  template <S8Output OUT>
  static void store(const S8GemmTile& t, int r, int u, Acc x) {
    avx2_epilogue::store_vector<OUT>(t, static_cast<size_t>(r), static_cast<size_t>(u), x);
  }
};

template <int R>
void tile(const S8GemmTile& t) {
  __m256i acc[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();

  const int16_t* a = static_cast<const int16_t*>(t.a);
  const int8_t* b = t.b;
  for (size_t g = t.groups; g != 0; --g) {
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b)));
    const __m256i w1 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b + 16)));
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m256i av = broadcast_i16x4(a + r * kS8KGroup);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(w0, av));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(w1, av));
    }
    a += kRows * kS8KGroup;
    b += kS8GroupBytes;
  }

  s8_store<Store>(t, acc);
}

using TileFn = void (*)(const S8GemmTile&);
const TileFn kTiles[kRows] = {tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

}  // namespace

void s8_gemm_6x8_avx2(const S8GemmTile& t) { kTiles[t.mr - 1](t); }

namespace {

// The inner step of the kernel above on registers: vpmaddwd + vpaddd into 12 accumulators, 2 B
// vectors times one A vector. Volatile asm: with intrinsics GCC 12 shares the loop-invariant
// products between chains and spills accumulators, which measures something else.
struct Peak {
  static constexpr int kChains = 12, kMacsPerStep = 16;
  using Acc = __m256i;
  struct Operands {
    __m256i w0, w1, a;
  };
  static Acc start(int i) { return _mm256_set1_epi32(i); }
  static Operands operands() {
    return {_mm256_set1_epi32(0x00030004), _mm256_set1_epi32(0x00050006), _mm256_set1_epi32(0x00010002)};
  }
  static void step(Acc& acc, const Operands& o, int i) {
    __m256i t;
    __asm__ volatile("vpmaddwd %[w], %[a], %[t]\n\tvpaddd %[t], %[acc], %[acc]"
                     : [acc] "+x"(acc), [t] "=&x"(t)
                     : [a] "x"(o.a), [w] "x"(i % 2 ? o.w1 : o.w0));
  }
  static Acc add(Acc a, Acc b) { return _mm256_add_epi32(a, b); }
  static int sink(Acc v) { return _mm256_extract_epi32(v, 0) + _mm256_extract_epi32(v, 7); }
};

}  // namespace

double s8_gemm_peak_avx2(size_t iterations) { return s8_gemm_peak<Peak>(iterations); }

void fill_s8_gemm_avx2(DispatchTable* table) {
  S8GemmKernels& k = table->s8_gemm;
  k = {"avx2", kRows, kCols, S8ALayout::kI16, s8_gemm_6x8_avx2, s8_gemm_peak_avx2};
  const CpuFeatures& cpu = cpu_features();
  if (cpu.avxvnni) {
    fill_s8_gemm_avxvnni(table);
    // Where AVX512-VNNI exists the avx512vnni level is the one to run; elsewhere (Alder Lake and
    // later client cores) AVX-VNNI is the best int8 path this CPU has.
    if (!cpu.avx512vnni) k = table->s8_gemm_avxvnni;
  }
}

}  // namespace kiln
