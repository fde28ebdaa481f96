// AVX2+FMA fp32 micro-kernel: 6 rows x 16 columns (one B panel), 12 ymm accumulators.
// 12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers; 12 independent
// chains cover the FMA latency (4) x 2 pipes.
#include "common/simd.h"

#include "common/dispatch.h"
#include "common/f32-vec.h"
#include "f32-gemm/f32-gemm-tile.h"
#include "f32-gemm/f32-gemm-ukernel.h"

namespace kiln {
namespace {

constexpr int kRows = static_cast<int>(kF32GemmMr);
constexpr int kVecs = 2;  // 8-float vectors per row of the tile

struct Avx2 : F32Avx2 {
  // The valid lanes of the last vector of an `nr`-wide tile.
  static Mask tail_mask(size_t nr) { return first_lanes(nr % 8 == 0 ? 8 : nr % 8); }
};

// R rows, NV vectors; MASKED: the last vector is partial (masked loads and stores). B is read
// under the mask only when it is not padded (read in place).
template <int R, int NV, bool MASKED>
void tile(const F32GemmTile& t) {
  f32_gemm_tile<Avx2, R, NV, MASKED, true, MASKED>(t);
}

using TileFn = void (*)(const F32GemmTile&);

// [rows - 1][vectors - 1][partial last vector]
const TileFn kTiles[kRows][kVecs][2] = {
    {{tile<1, 1, false>, tile<1, 1, true>}, {tile<1, 2, false>, tile<1, 2, true>}},
    {{tile<2, 1, false>, tile<2, 1, true>}, {tile<2, 2, false>, tile<2, 2, true>}},
    {{tile<3, 1, false>, tile<3, 1, true>}, {tile<3, 2, false>, tile<3, 2, true>}},
    {{tile<4, 1, false>, tile<4, 1, true>}, {tile<4, 2, false>, tile<4, 2, true>}},
    {{tile<5, 1, false>, tile<5, 1, true>}, {tile<5, 2, false>, tile<5, 2, true>}},
    {{tile<6, 1, false>, tile<6, 1, true>}, {tile<6, 2, false>, tile<6, 2, true>}},
};

}  // namespace

void f32_gemm_6x16_avx2(const F32GemmTile& t) {
  kTiles[t.mr - 1][(t.nr + 7) / 8 - 1][t.nr % 8 != 0 ? 1 : 0](t);
}

// 12 independent FMA chains (latency 4 x 2 pipes needs 8).
double f32_gemm_peak_avx2(size_t iterations) { return f32_gemm_peak<Avx2, 12>(iterations); }

void fill_f32_gemm_avx2(DispatchTable* table) {
  table->f32_gemm.mr = kF32GemmMr;
  table->f32_gemm.nr = 8 * kVecs;
  table->f32_gemm.ukernel = f32_gemm_6x16_avx2;
  table->f32_gemm.peak_loop = f32_gemm_peak_avx2;
}

}  // namespace kiln
