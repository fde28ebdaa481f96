// AVX-VNNI int8 micro-kernel: 6 rows x 16 columns with the VEX-encoded vpdpbusd on ymm.
// This file is in the avx2 source group and enables AVX-VNNI per function (target attribute):
// with AVX512VL also enabled, GCC could pick the EVEX form of the same instruction (or ymm16-31),
// which CPUs with AVX-VNNI but no AVX-512 (Alder Lake and later client cores) cannot run.
// 12 accumulators + 2 B + 1 A broadcast fit the 16 VEX-addressable registers.
#include "common/simd.h"

#include <cstring>

#include "common/dispatch.h"
#include "quant/requantize-avx2.h"
#include "s8-gemm/s8-gemm-ukernel.h"

#define KILN_AVXVNNI __attribute__((target("avxvnni")))

namespace kiln {
namespace {

constexpr int kRows = 6;
constexpr size_t kCols = 16;

template <int R, S8Output OUT>
void store_tile(const S8GemmTile& t, const __m256i (&acc)[R][2]) {
  const size_t first = t.nr < 8 ? t.nr : 8;
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) {
    avx2_epilogue::store8<OUT>(t, r, 0, acc[r][0], first);
    if (t.nr > 8) avx2_epilogue::store8<OUT>(t, r, 8, acc[r][1], t.nr - 8);
  }
}

template <int R>
KILN_AVXVNNI void tile(const S8GemmTile& t) {
  __m256i acc[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();

  const uint8_t* a = static_cast<const uint8_t*>(t.a);
  const int8_t* b = t.b;
  const size_t rs = t.a_row_stride, gs = t.a_group_stride;
  for (size_t g = t.groups; g != 0; --g) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32));
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * rs, sizeof(quad));
      const __m256i av = _mm256_set1_epi32(quad);
      acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], av, b0);
      acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], av, b1);
    }
    a += gs;
    b += kS8GroupBytes;
  }

  switch (t.out) {
    case S8Output::kInt32: store_tile<R, S8Output::kInt32>(t, acc); break;
    case S8Output::kU8: store_tile<R, S8Output::kU8>(t, acc); break;
    case S8Output::kF32: store_tile<R, S8Output::kF32>(t, acc); break;
  }
}

using TileFn = void (*)(const S8GemmTile&);
const TileFn kTiles[kRows] = {tile<1>, tile<2>, tile<3>, tile<4>, tile<5>, tile<6>};

}  // namespace

void s8_gemm_6x16_avxvnni(const S8GemmTile& t) { kTiles[t.mr - 1](t); }

// 12 independent vpdpbusd chains on register operands; inline asm for the reason given in
// s8-gemm-avx512vnni.cc (GCC 12 copies accumulators around the intrinsic in this loop).
KILN_AVXVNNI double s8_gemm_peak_avxvnni(size_t iterations) {
  constexpr int kChains = 12;
  __m256i acc[kChains];
#pragma GCC unroll 12
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_epi32(i);
  __m256i a = _mm256_set1_epi32(0x01020304);
  __m256i b = _mm256_set1_epi32(0x05060708);
  __asm__("" : "+x"(a), "+x"(b));
  for (size_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc[i]) : "x"(a), "x"(b));
  }
  __m256i sum = acc[0];
#pragma GCC unroll 12
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_epi32(sum, acc[i]);
  volatile int sink = _mm256_extract_epi32(sum, 0) + _mm256_extract_epi32(sum, 7);
  (void)sink;
  return static_cast<double>(iterations) * kChains * 32;
}

void fill_s8_gemm_avxvnni(DispatchTable* table) {
  S8GemmKernels& k = table->s8_gemm_avxvnni;
  k = {"avxvnni", kRows, kCols, S8ALayout::kU8, s8_gemm_6x16_avxvnni, s8_gemm_peak_avxvnni};
}

}  // namespace kiln
