// AVX-512 fp32 micro-kernel: 12 rows x 32 columns (two 6-row A panels, two 16-column B panels),
// 24 zmm accumulators. Cores with AVX-512 retire two 512-bit FMAs per cycle with a 4-cycle
// latency: 24 independent chains keep both pipes busy. Per k the kernel loads 2 B vectors (from
// the K block's B, in L2) and broadcasts 12 A values (from the A tile, in L1) for 24 FMAs; the
// 6 x 64 tile this replaced loaded 4 B vectors per k for the same FMAs. On this project's 2-core
// VM (an Intel Xeon when measured), loops of these tiles over a B block at kc 256-384 ran at
// 69-71% of the FMA peak against 62-63% for 6 x 64 ones; the broadcasts cost a few points by
// themselves (24 FMAs and 12 broadcasts per step, all in L1: 80%).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "common/simd.h"

#include "common/dispatch.h"
#include "common/f32-vec.h"
#include "common/tile-table.h"
#include "f32-gemm/f32-gemm-tile.h"
#include "f32-gemm/f32-gemm-ukernel.h"

namespace kiln {
namespace {

constexpr int kRows = 2 * static_cast<int>(kF32GemmMr);
constexpr int kVecs = 2;  // 16-float vectors per row of the tile

// Mask of the valid lanes of the last vector of a tile `nr` columns wide.
inline __mmask16 tail_mask(size_t nr) { return F32Avx512::first_lanes(nr % 16 == 0 ? 16 : nr % 16); }

struct Avx512 : F32Avx512 {
  static Mask tail_mask(size_t nr) { return kiln::tail_mask(nr); }
};

// R rows, NV vectors (one 16-column panel each); the last vector of C always goes under the tail
// mask (all lanes when nr is a multiple of 16), B's only when it is read in place, not padded.
template <int R, int NV>
void tile_entry(const F32GemmTile& t) {
  if (!t.b_padded && t.nr % 16 != 0) {
    f32_gemm_tile<Avx512, R, NV, true, false, true>(t);
  } else {
    f32_gemm_tile<Avx512, R, NV, false, false, true>(t);
  }
}

using TileFn = void (*)(const F32GemmTile&);

struct Tiles {
  template <int R, int V>
  static constexpr TileFn at() { return tile_entry<R, V>; }
};
constexpr TileTable<TileFn, Tiles, kRows, kVecs> kTiles;

}  // namespace

void f32_gemm_12x32_avx512(const F32GemmTile& t) { kTiles.at[t.mr - 1][(t.nr + 15) / 16 - 1](t); }

// 24 independent FMA chains (latency 4 x 2 pipes needs 8; more costs nothing, registers only).
double f32_gemm_peak_avx512(size_t iterations) { return f32_gemm_peak<Avx512, 24>(iterations); }

// V panels (16 columns each) of one output row. V up to 8: 8 independent FMA chains per K block
// (the 1 x 32 tile has 2, a quarter of what two 4-cycle pipes need) and no packing of the single A row.
namespace {

template <int V>
void gemv_panels(const float* x, size_t k, size_t kc_max, const float* b, size_t n, float* y,
                 const float* col_bias, bool relu) {
  const size_t ps = k * kF32GemmPanelN;
  __m512 total[V];
  for (size_t pc = 0; pc < k; pc += kc_max) {
    const size_t kc = k - pc < kc_max ? k - pc : kc_max;
    __m512 acc[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[v] = _mm512_setzero_ps();
    const float* bp = b + pc * kF32GemmPanelN;
    for (size_t p = 0; p < kc; ++p) {
      const __m512 xv = _mm512_set1_ps(x[pc + p]);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[v] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(bp + v * ps), acc[v]);
      bp += kF32GemmPanelN;
    }
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) total[v] = pc == 0 ? acc[v] : _mm512_add_ps(acc[v], total[v]);
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) {
    const size_t left = n - 16 * v;
    const __mmask16 m = F32Avx512::first_lanes(left);
    __m512 r = total[v];
    if (col_bias != nullptr) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, col_bias + 16 * v));
    if (relu) r = _mm512_max_ps(zero, r);
    _mm512_mask_storeu_ps(y + 16 * v, m, r);
  }
}

}  // namespace

void f32_gemv_packed_avx512(const float* x, size_t k, size_t kc, const float* b, size_t n, float* y, const float* col_bias,
                 bool relu) {
  constexpr size_t kGroup = 8 * kF32GemmPanelN;
  for (size_t j = 0; j < n; j += kGroup) {
    const size_t cols = n - j < kGroup ? n - j : kGroup;
    const float* bj = b + (j / kF32GemmPanelN) * k * kF32GemmPanelN;
    const float* bias = col_bias != nullptr ? col_bias + j : nullptr;
    switch ((cols + 15) / 16) {
      case 1: gemv_panels<1>(x, k, kc, bj, cols, y + j, bias, relu); break;
      case 2: gemv_panels<2>(x, k, kc, bj, cols, y + j, bias, relu); break;
      case 3: gemv_panels<3>(x, k, kc, bj, cols, y + j, bias, relu); break;
      case 4: gemv_panels<4>(x, k, kc, bj, cols, y + j, bias, relu); break;
      case 5: gemv_panels<5>(x, k, kc, bj, cols, y + j, bias, relu); break;
      case 6: gemv_panels<6>(x, k, kc, bj, cols, y + j, bias, relu); break;
      case 7: gemv_panels<7>(x, k, kc, bj, cols, y + j, bias, relu); break;
      default: gemv_panels<8>(x, k, kc, bj, cols, y + j, bias, relu); break;
    }
  }
}

void fill_f32_gemm_avx512(DispatchTable* table) {
  table->f32_gemm.mr = kRows;
  table->f32_gemm.nr = 16 * kVecs;
  table->f32_gemm.ukernel = f32_gemm_12x32_avx512;
  table->f32_gemm.peak_loop = f32_gemm_peak_avx512;
  table->f32_gemm.gemv_packed = f32_gemv_packed_avx512;
}

}  // namespace kiln
