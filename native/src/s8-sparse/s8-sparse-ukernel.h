// The sparse int8 kernels the dispatch table holds per ISA (common/dispatch.h): one output channel
// of the direct sparse convolution (sums, then its requantize / pool epilogue), and the sparse
// GEMM's rows, batch in lanes or gathered per image. The scalar ones (s8-sparse-reference.cc) are
// the specification; every other path gives the same bits. Sizes the plans allocate are rounded
// to kS8SparseLanes on every ISA, so scratch never depends on the ISA.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln {

struct DispatchTable;

// Positions (conv) and batch lanes (GEMM) are padded to a multiple of this (the widest vector).
constexpr size_t kS8SparseLanes = 16;

// One image of a convolution, as every channel of it sees it.
struct S8SpConvImage {
  const uint8_t* x = nullptr;  // channel-group planes, 4 bytes per (group, position), with slack
  size_t positions = 0;        // conv outputs computed: rows * wp (the kernel may compute up to
                               // the next multiple of kS8SparseLanes; acc has room)
  size_t wp = 0, rows = 0;     // row pitch and conv rows computed
  size_t out_w = 0;            // valid columns of a row (OW)
  bool pool = false;           // fused 2x2/2 max pool: pooled_h x pooled_w outputs
  size_t pooled_h = 0, pooled_w = 0;
  size_t out_stride = 0;       // bytes between output pixels (O)
  float lo = 0, hi = 255;      // clamp bounds minus the zero point
  int32_t zero_point = 0;
  int32_t* acc = nullptr;      // scratch: 2 planes of acc_plane int32
  size_t acc_plane = 0;        // >= round_up(positions, kS8SparseLanes) + 64
  // Scratch for kernels that requantize across channels: kS8SparseLanes rows of values_stride
  // int32 (at least round_up(positions, kS8SparseLanes)), each output row in whole vectors of 16
  // (8 pooled columns per vector when pooling).
  int32_t* values = nullptr;
  size_t values_stride = 0;
};

// One output channel: its blocks (dword offsets into x, 4-byte weight words).
struct S8SpConvChannel {
  const int32_t* offset = nullptr;
  const int32_t* word = nullptr;
  size_t blocks = 0;
  int32_t init = 0;  // bias - x_zero_point * row sum
  float scale = 1;
};

// For each channel i < count (<= kS8SparseLanes): acc[p] = init + sum_b dot4(x dword (p + offset[b]), word[b]) over
// the positions, then channel i's outputs (channel i's pixel j at out[i + j * out_stride]). The
// SIMD kernels alternate between the two acc planes and run a channel's epilogue after the next
// channel's sums: its unaligned reloads of the sums then never wait on stores still in flight
// (store-to-load forwarding fails for loads that straddle stores: half the time, measured).
using S8SpConvChannelsFn = void (*)(const S8SpConvImage& im, const S8SpConvChannel* ch, size_t count, uint8_t* out);

// A sparse GEMM call: rows [row0, row1) of the weights (output features) for all images.
struct S8SpmmJob {
  const uint8_t* x = nullptr;  // lanes: [groups][lanes][4]; gather: m rows of ldx bytes (>= 4 * groups)
  size_t m = 0;                // images
  size_t lanes = 0;            // m rounded up to kS8SparseLanes (lanes layout)
  size_t ldx = 0;              // gather layout row stride
  const uint32_t* row_ptr = nullptr;
  const uint32_t* group = nullptr;
  const int32_t* word = nullptr;
  const int32_t* init = nullptr;  // per row
  const float* scale = nullptr;   // per row
  bool float_output = false;
  float lo = 0, hi = 255;
  int32_t zero_point = 0;
  void* out = nullptr;  // m x ldc, uint8 or float
  size_t ldc = 0;
  int32_t* acc = nullptr;  // scratch: kS8SparseLanes x lanes int32 (lanes layout)
};

using S8SpmmFn = void (*)(const S8SpmmJob& j, size_t row0, size_t row1);

// Copies one NHWC image (height x width x 4 * groups bytes: whole channel groups only) into the
// channel-group planes at x: group g's pixel (h, w) at dword g * plane + (h + top) * wp + w + left.
// Writes nothing else (the caller filled the padding).
using S8SpTransformFn = void (*)(const uint8_t* in, size_t height, size_t width, size_t groups, size_t plane,
                                 size_t wp, size_t top, size_t left, uint8_t* x);

// The lanes layout of a batch: a (m rows of k bytes, k % 4 == 0) to xt[g][lanes][4] for every
// group g < k / 4 and lane < lanes (a multiple of kS8SparseLanes), lanes past m zero.
using S8SpTransposeFn = void (*)(const uint8_t* a, size_t m, size_t k, size_t lanes, uint8_t* xt);

struct S8SparseKernels {
  const char* name = nullptr;  // "scalar", "avx2", "avxvnni", "avx512vnni"
  S8SpConvChannelsFn conv_channels = nullptr;
  S8SpmmFn spmm_lanes = nullptr;
  S8SpmmFn spmm_gather = nullptr;
  S8SpTransformFn transform = nullptr;  // null: the plan's portable loop
  S8SpTransposeFn transpose = nullptr;  // null: the plan's portable loop
};

// The table's sparse int8 kernels: its own, or the AVX-VNNI ones where the dense int8 GEMM runs
// AVX-VNNI on it (the CPU's best int8 path, or set_s8_gemm_force_avxvnni), so the dense and sparse
// paths a test or benchmark selects are the same family.
const S8SparseKernels& s8_sparse_kernels(const DispatchTable& t);

void s8_spconv_channels_scalar(const S8SpConvImage& im, const S8SpConvChannel* ch, size_t count, uint8_t* out);
void s8_spmm_lanes_scalar(const S8SpmmJob& j, size_t row0, size_t row1);
void s8_spmm_gather_scalar(const S8SpmmJob& j, size_t row0, size_t row1);

void fill_s8_sparse_scalar(DispatchTable* t);      // s8-sparse-reference.cc
void fill_s8_sparse_avx2(DispatchTable* t);        // s8-sparse-avx2.cc (AVX2 exact, and AVX-VNNI)
void fill_s8_sparse_avx512vnni(DispatchTable* t);  // s8-sparse-avx512vnni.cc

}  // namespace kiln
