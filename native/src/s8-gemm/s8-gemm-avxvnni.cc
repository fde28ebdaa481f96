// AVX-VNNI int8 micro-kernel: 6 rows x 16 columns with the VEX-encoded vpdpbusd on ymm.
// This file is in the avx2 source group and enables AVX-VNNI per function (target attribute):
// with AVX512VL also enabled, GCC could pick the EVEX form of the same instruction (or ymm16-31),
// which CPUs with AVX-VNNI but no AVX-512 (Alder Lake and later client cores) cannot run.
// 12 accumulators + 2 B + 1 A broadcast fit the 16 VEX-addressable registers.
#include "common/simd.h"

#include <cstring>

#include "common/dispatch.h"
#include "quant/requantize-avx2.h"
#include "s8-gemm/s8-gemm-tile.h"
#include "s8-gemm/s8-gemm-ukernel.h"

#define KILN_AVXVNNI __attribute__((target("avxvnni")))

namespace kiln {
namespace {

constexpr int kRows = 6;
constexpr size_t kCols = 16;

// One accumulator per 8-column output vector.
struct Store {
  using Acc = __m256i;
  static constexpr bool kPairs = false;
  static constexpr int kRowU8Vectors = 0;
  template <S8Output OUT>
  static void store(const S8GemmTile& t, int r, int u, Acc x) {
    avx2_epilogue::store_vector<OUT>(t, static_cast<size_t>(r), static_cast<size_t>(u), x);
  }
};

// acc += `groups` k groups of rows a[r] (4 bytes each, `gs` bytes apart) times B from b on.
template <int R>
KILN_AVXVNNI inline void accumulate(__m256i (&acc)[R][2], const uint8_t* const (&a)[R], size_t gs, size_t groups,
                                    const int8_t*& b) {
  for (size_t g = 0, off = 0; g < groups; ++g, off += gs) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32));
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      int32_t quad;
      std::memcpy(&quad, a[r] + off, sizeof(quad));
      const __m256i av = _mm256_set1_epi32(quad);
      acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], av, b0);
      acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], av, b1);
    }
    b += kS8GroupBytes;
  }
}

template <int R>
KILN_AVXVNNI void tile(const S8GemmTile& t) {
  __m256i acc[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();

  const int8_t* b = t.b;
  const uint8_t* a[R];
  if (t.a_rows == nullptr) {
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) a[r] = static_cast<const uint8_t*>(t.a) + r * t.a_row_stride;
    accumulate<R>(acc, a, t.a_group_stride, t.groups, b);
  } else {
    for (size_t s = 0, g = 0; g < t.groups; ++s, g += t.a_segment_groups) {
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) a[r] = t.a_rows[s * t.a_rows_stride + r];
      accumulate<R>(acc, a, kS8KGroup, t.a_segment_groups, b);
    }
  }

  s8_store<Store>(t, acc);
}

using TileFn = void (*)(const S8GemmTile&);
const TileFn kTiles[kRows] = {tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

}  // namespace

void s8_gemm_6x16_avxvnni(const S8GemmTile& t) { kTiles[t.mr - 1](t); }

namespace {

// 12 independent vpdpbusd chains on register operands; inline asm for the reason given in
// s8-gemm-avx512vnni.cc (GCC 12 copies accumulators around the intrinsic in this loop).
struct Peak {
  static constexpr int kChains = 12, kMacsPerStep = 32;
  using Acc = __m256i;
  struct Operands {
    __m256i a, b;
  };
  static Acc start(int i) { return _mm256_set1_epi32(i); }
  static Operands operands() {
    __m256i a = _mm256_set1_epi32(0x01020304);
    __m256i b = _mm256_set1_epi32(0x05060708);
    __asm__("" : "+x"(a), "+x"(b));
    return {a, b};
  }
  static void step(Acc& acc, const Operands& o, int) { __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(o.a), "x"(o.b)); }
  static Acc add(Acc a, Acc b) { return _mm256_add_epi32(a, b); }
  static int sink(Acc v) { return _mm256_extract_epi32(v, 0) + _mm256_extract_epi32(v, 7); }
};

}  // namespace

KILN_AVXVNNI double s8_gemm_peak_avxvnni(size_t iterations) { return s8_gemm_peak<Peak>(iterations); }

void fill_s8_gemm_avxvnni(DispatchTable* table) {
  S8GemmKernels& k = table->s8_gemm_avxvnni;
  k = {"avxvnni", kRows, kCols, S8ALayout::kU8, s8_gemm_6x16_avxvnni, s8_gemm_peak_avxvnni};
}

}  // namespace kiln
