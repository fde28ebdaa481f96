// The contract between the direct sparse convolution driver (sparse-conv.cc) and its per-ISA
// kernels (sparse-conv-reference.cc, sparse-conv-avx2.cc, sparse-conv-avx512.cc; the SIMD ones
// from sparse-conv-tile.h). Internal.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

// Output-channel groups [g_begin, g_end) of br channels each, over output positions [0, n) of the
// padded-pitch layout (position p reads x[offset + p] for every block of its group).
struct F32SparseConvArgs {
  const float* x = nullptr;           // the first input plane, shifted to the first output row computed
  const uint32_t* group_ptr = nullptr;  // blocks of group g: [group_ptr[g], group_ptr[g + 1])
  const int32_t* offset = nullptr;    // per block: element offset of its tap from x (>= 0)
  const float* values = nullptr;      // br per block
  const float* bias = nullptr;        // br per group (never null; zeros for none)
  size_t g_begin = 0, g_end = 0;
  size_t n = 0;                       // >= 1; x[offset + n - 1] is the last element read
  float* y = nullptr;                 // channel r of group g at y + ((g - g_begin) * br + r) * ldy, write-only
  size_t ldy = 0;                     // >= n
  bool relu = false;
};

using F32SparseConvFn = void (*)(const F32SparseConvArgs& args);

// Which kernel runs a block height: 1 (unstructured), 4 (4x1 blocks), 8 (8x1 blocks).
constexpr int kSparseConvBlockKinds = 3;
inline int sparse_conv_kind(size_t br) { return br == 8 ? 2 : br == 4 ? 1 : 0; }

// The max pool of `channels` planes of the kernel's output (channel c at x + c * ldx, rows of
// `pitch` floats) into NCHW planes of out_h x out_w (channel c at y + c * ldy_out, rows of out_w).
// Windows lie inside the computed rows: row py * stride_h + (kernel_h - 1) * dilation_h < rows
// computed, likewise columns against the valid output width.
struct F32SparseConvPoolArgs {
  const float* x = nullptr;
  size_t ldx = 0, pitch = 0, channels = 0;
  size_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  size_t out_h = 0, out_w = 0;
  float* y = nullptr;
  size_t ldy = 0;
};

using F32SparseConvPoolFn = void (*)(const F32SparseConvPoolArgs& args);

struct F32SparseConvKernels {
  // One kernel per block height (sparse_conv_kind); every table has all three.
  F32SparseConvFn kernel[kSparseConvBlockKinds] = {};
  F32SparseConvPoolFn max_pool = nullptr;  // never null
};

// Any window, one output at a time (the scalar table's pool, and the SIMD ones' fallback).
void f32_sparse_conv_max_pool_scalar(const F32SparseConvPoolArgs& a);

// Named output channels x vector width, per ISA.
void f32_sparse_conv_1_scalar(const F32SparseConvArgs& a);
void f32_sparse_conv_4_scalar(const F32SparseConvArgs& a);
void f32_sparse_conv_8_scalar(const F32SparseConvArgs& a);
void f32_sparse_conv_1_avx2(const F32SparseConvArgs& a);
void f32_sparse_conv_4_avx2(const F32SparseConvArgs& a);
void f32_sparse_conv_8_avx2(const F32SparseConvArgs& a);
void f32_sparse_conv_1_avx512(const F32SparseConvArgs& a);
void f32_sparse_conv_4_avx512(const F32SparseConvArgs& a);
void f32_sparse_conv_8_avx512(const F32SparseConvArgs& a);
void f32_sparse_conv_max_pool_avx2(const F32SparseConvPoolArgs& a);
void f32_sparse_conv_max_pool_avx512(const F32SparseConvPoolArgs& a);

}  // namespace kiln
