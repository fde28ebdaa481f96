// The contract between the N:M SpMM driver (sparse-nm.cc) and the per-ISA kernels
// (sparse-nm-reference.cc, sparse-nm-avx2.cc, sparse-nm-avx512.cc, the SIMD ones from
// sparse-nm-tile.h). Internal.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/sparse-nm.h"

namespace kiln {

// Rows [r_begin, r_end) of a packed N:M matrix against columns [0, n) of X.
struct F32NmSpmmArgs {
  const float* values = nullptr;  // PackedNmF32::values(): groups_per_row * nm_n per row
  const uint8_t* meta = nullptr;  // PackedNmF32::meta(): groups_per_row * meta_bytes per row
  size_t meta_bytes = 1;
  size_t nm_n = 1, nm_m = 4;      // N and M
  size_t spatial = 1;             // kernel positions; X row of (c, p) = c * spatial + p
  size_t channel_groups = 0;      // groups per kernel position (channels / M)
  size_t k = 0;                   // rows of X
  size_t r_begin = 0, r_end = 0;
  const float* x = nullptr;       // X(k, j) at x[k * ldx + j]
  size_t ldx = 0;
  size_t n = 0;                   // columns, >= 1
  float* y = nullptr;             // Y(i, j) at y[i * ldy + j], write-only
  size_t ldy = 0;
  const float* bias = nullptr;    // one per row, or null
  bool relu = false;
};

using F32NmSpmmFn = void (*)(const F32NmSpmmArgs& args);

constexpr size_t kNmMaxN = 7;  // N < M <= 8

struct F32NmSpmmKernels {
  // m4[n]: M = 4, N = n (1..3); m8[n]: M = 8, N = n (1..7). Entries 0 unused. Every ISA table has
  // them all (the scalar level fills them; a level without its own leaves the one below).
  F32NmSpmmFn m4[4] = {};
  F32NmSpmmFn m8[kNmMaxN + 1] = {};
  size_t pixel_tile = 1;  // columns one kernel call sweeps per register tile (N split unit)
};

// spmm_nm_f32 on the kernels of one table (tests walk every ISA's table).
void spmm_nm_f32(const F32NmSpmmKernels& kern, const PackedNmF32& w, size_t n, const float* x, size_t ldx,
                 float* y, size_t ldy, const float* bias, bool relu, size_t max_threads);

void f32_nm_spmm_scalar(const F32NmSpmmArgs& a);

}  // namespace kiln
