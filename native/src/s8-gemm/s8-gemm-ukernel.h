// The contract between the int8 GEMM driver (s8-gemm.cc) and the per-ISA micro-kernels.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kiln/s8-gemm.h"

namespace kiln {

constexpr size_t kS8PanelN = 16;     // columns per packed B panel
constexpr size_t kS8KGroup = 4;      // consecutive k of one column stored together
constexpr size_t kS8GroupBytes = 64; // one k group of one panel: 16 columns x 4 k
// Per-column epilogue arrays are padded to this many columns (the widest tile), so a kernel may
// load whole vectors past N.
constexpr size_t kS8MaxNr = 64;

// How a kernel wants its A panel: 4 k of a row as 4 bytes (vpdpbusd) or as 4 int16 (vpmaddwd).
// Element (i, group g, t) of a panel of `mr` rows at [(g * mr + i) * 4 + t]; rows past the
// tile and k past K are zero.
enum class S8ALayout { kU8, kI16 };

enum class S8Output { kInt32, kU8, kF32 };

// One output tile of at most mr x nr elements over the whole depth.
struct S8GemmTile {
  const void* a = nullptr;       // packed A panel in the kernel's layout
  // kU8 kernels read the 4 bytes of row r, group g at a + r * a_row_stride + g * a_group_stride:
  // (4, mr * 4) for a packed panel, or (lda, 4) straight from a row-major A whose K is a multiple
  // of 4 (no packing pass). kI16 kernels ignore these and always get a packed panel.
  size_t a_row_stride = 0, a_group_stride = 0;
  // When set (kU8 kernels only), A is read through row pointers instead (an int8 convolution's
  // kernel rows, read in place from its input). The groups come in `groups / a_segment_groups`
  // segments; row r's segment s is a_segment_groups groups of 4 contiguous bytes from
  // a_rows[s * a_rows_stride + r]. a, a_row_stride and a_group_stride are then unused.
  const uint8_t* const* a_rows = nullptr;
  size_t a_rows_stride = 0, a_segment_groups = 0;
  const int8_t* b = nullptr;     // column j, group g at b + (j / 16) * b_panel_stride + g * 64 + (j % 16) * 4
  size_t b_panel_stride = 0;     // bytes between 16-column panels (a multiple of 64)
  size_t groups = 0;             // padded K / 4 (0 when K == 0)
  size_t mr = 0, nr = 0;         // 1 <= mr <= kernel mr, 1 <= nr <= kernel nr
  // Epilogue. Per-column arrays start at the tile's first column and are padded (kS8MaxNr).
  const int32_t* offset = nullptr;  // bias[n] - za * colsum[n], added to the sum
  S8Output out = S8Output::kInt32;
  void* c = nullptr;             // int32_t*, uint8_t* or float* per `out`
  size_t ldc = 0;                // in elements
  const float* scale = nullptr;  // kU8, kF32
  const float* bias = nullptr;   // kF32 (zeros when the caller gave none)
  float lo = 0.0f, hi = 0.0f;    // kU8: clamp bounds minus the zero point
  int32_t zero_point = 0;        // kU8
};

using S8GemmUkernelFn = void (*)(const S8GemmTile& tile);

// An A of M rows given as row pointers, for a convolution that reads its input in place instead
// of copying patches (im2col): row i, k group g = s * segment_groups + q is the 4 bytes at
// rows[s * m + i] + 4 * q. K = segments * segment_groups * 4.
struct S8IndirectA {
  const uint8_t* const* rows = nullptr;  // [segments][m]
  size_t segments = 0, segment_groups = 0;
};
// Runs `iterations` rounds of a register-only loop of the family's multiply-add instructions;
// returns the int8 multiply-adds done.
using S8PeakLoopFn = double (*)(size_t iterations);

struct S8GemmKernels {
  const char* name = nullptr;  // "scalar", "avx2", "avx512bw", "avx512vnni", "avxvnni"
  size_t mr = 0;               // rows per tile (and per packed A panel)
  size_t nr = 0;               // columns per tile: 8, or a multiple of 16 up to kS8MaxNr
  S8ALayout a_layout = S8ALayout::kU8;
  S8GemmUkernelFn ukernel = nullptr;
  S8PeakLoopFn peak_loop = nullptr;
};

// The family the next int8 GEMM call runs: the active ISA's, or AVX-VNNI when forced.
struct DispatchTable;

// The int8 GEMM kernels of table `t`: its s8_gemm, or its AVX-VNNI ones where
// set_s8_gemm_force_avxvnni(true) asked for them and it has them. A caller that read dispatch()
// once for a whole operation passes that table's down to the overloads below.
const S8GemmKernels& s8_gemm_kernels(const DispatchTable& t);
void s8gemm_requantize(const S8GemmKernels& kern, size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point,
                       const PackedS8B& b, const int32_t* bias, const S8Requantization& rq, uint8_t* c, size_t ldc,
                       size_t max_threads);
void s8gemm_dequantize(const S8GemmKernels& kern, size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point,
                       const PackedS8B& b, const int32_t* bias, const S8Dequantization& dq, float* c, size_t ldc,
                       size_t max_threads);
// The same with A given as row pointers, for kU8 kernels (which read through them; a kI16 kernel
// would need a gathering pass as costly as the im2col this avoids). Throws std::invalid_argument
// for another kernel or b.depth() != segments * segment_groups * 4.
void s8gemm_requantize_indirect(const S8GemmKernels& kern, size_t m, const S8IndirectA& a, uint8_t a_zero_point,
                                const PackedS8B& b, const int32_t* bias, const S8Requantization& rq, uint8_t* c,
                                size_t ldc, size_t max_threads);
void s8gemm_dequantize_indirect(const S8GemmKernels& kern, size_t m, const S8IndirectA& a, uint8_t a_zero_point,
                                const PackedS8B& b, const int32_t* bias, const S8Dequantization& dq, float* c,
                                size_t ldc, size_t max_threads);
const S8GemmKernels& s8_gemm_active_kernels();

// The micro-kernels and peak loops, named by tile and ISA (so a profile says which one ran).
void s8_gemm_4x16_scalar(const S8GemmTile& tile);
void s8_gemm_6x8_avx2(const S8GemmTile& tile);
void s8_gemm_6x16_avxvnni(const S8GemmTile& tile);
void s8_gemm_6x32_avx512bw(const S8GemmTile& tile);
void s8_gemm_6x64_avx512vnni(const S8GemmTile& tile);
double s8_gemm_peak_scalar(size_t iterations);
double s8_gemm_peak_avx2(size_t iterations);
// s8_gemm_peak_avxvnni (s8-gemm-avxvnni.cc) carries a target attribute: not declared here, a plain
// declaration would make GCC treat the two as function versions.
double s8_gemm_peak_avx512bw(size_t iterations);
double s8_gemm_peak_avx512vnni(size_t iterations);

struct DispatchTable;
// Called by the fill_dispatch_* functions of common/dispatch.h.
void fill_s8_gemm_scalar(DispatchTable* table);
void fill_s8_gemm_avx2(DispatchTable* table);     // calls the next one when the CPU has AVX-VNNI
void fill_s8_gemm_avxvnni(DispatchTable* table);  // sets s8_gemm_avxvnni
void fill_s8_gemm_avx512(DispatchTable* table);
void fill_s8_gemm_avx512vnni(DispatchTable* table);

}  // namespace kiln
