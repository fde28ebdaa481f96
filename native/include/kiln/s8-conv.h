// int8 convolution (ONNX QLinearConv) on uint8 NHWC activations, and the layout kernels around
// it: quantize (float NCHW -> uint8 NHWC), dequantize (uint8 NHWC -> float NCHW) and uint8 NHWC
// max pooling. Every ISA path gives the same bits as the scalar one. Nothing here knows about Node.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/conv.h"
#include "kiln/f32-gemm.h"  // CacheAlignedAllocator
#include "kiln/pool.h"
#include "kiln/s8-gemm.h"

namespace kiln {

struct DispatchTable;  // internal: one ISA's kernels (native/src/common/dispatch.h)

// Quantization parameters of one QLinearConv. Weights are int8 symmetric (zero point 0).
struct S8ConvQuant {
  uint8_t x_zero_point = 0;
  const float* w_scale = nullptr;  // w_scale_count values: O (per output channel) or 1
  size_t w_scale_count = 1;
  float x_scale = 1, y_scale = 1;  // y_scale unused when the output is float
  uint8_t y_zero_point = 0, y_min = 0, y_max = 255;  // fused ReLU: y_min = y_zero_point

  // Output channel o's multiplier (docs/int8-ir.md): fround(fround(x_scale * w_scale[o]) / y_scale),
  // or fround(x_scale * w_scale[o]) for a float output.
  float multiplier(size_t o, bool float_output = false) const;
};

// A QLinearConv with its weights packed once (one PackedS8B per group) and its per-channel
// multipliers precomputed as fround(fround(x_scale * w_scale[o]) / y_scale) (docs/int8-ir.md), or
// fround(x_scale * w_scale[o]) for a float output.
//
//   S8Conv2dPlan plan(geometry, weight_oihw, bias, quant, float_output);
//   std::vector<uint8_t> scratch(plan.scratch_bytes(batch, threads));
//   plan.run(input_nhwc, output_nhwc, batch, scratch.data(), threads);
//
// acc[o] = sum (x - x_zero_point) * w + bias[o] (exact int32); a padded input position counts as
// x_zero_point, so it adds exactly 0. The output is uint8 requantized as S8Requantization does,
// or (float_output) float(acc) * fround(x_scale * w_scale[o]) as S8Dequantization does.
// The weight, bias and scale arrays are copied at construction and need not outlive the plan.
// `run` is const and thread-safe (several runs may share a plan, each with its own scratch);
// results do not depend on the thread count or the ISA. The packed layout is ISA independent.
// Grouped convolutions run one GEMM per group writing a strided slice of the NHWC output.
// Depthwise ones with one output channel per group (groups = Cin = O) run a direct kernel over the
// channels instead (s8-conv/s8-depthwise.h: portable code, vectorised by the compiler for the
// baseline ISA only); with a channel multiplier > 1 they take the per-group GEMMs, which work but
// slowly (a GEMM of depth kernel_h*kernel_w and a few columns per group). Grouped ones with 8 output
// channels per group (RegNet) run a direct kernel where the CPU has VNNI (AVX-512 VNNI or AVX-VNNI). The constructor throws std::invalid_argument for
// an invalid geometry, w_scale_count not 1 or O, or y_min > y_max (callers validate first).
class S8Conv2dPlan {
 public:
  S8Conv2dPlan(const Conv2dGeometry& g, const int8_t* weight_oihw, const int32_t* bias /*O or null*/,
               const S8ConvQuant& q, bool float_output);

  const Conv2dGeometry& geometry() const { return g_; }
  // Which kernels run it, for a profile to say: grouped convolutions of 8-channel groups on the
  // direct kernel where the CPU has VNNI; convolutions that read their input through row
  // pointers (no im2col) on the VNNI and scalar GEMM kernels.
  bool grouped_direct() const { return grouped_; }
  bool reads_input_in_place() const { return indirect_; }
  bool float_output() const { return float_output_; }
  // Bytes of scratch `run` needs for this batch and thread count (max_threads as passed to run;
  // 0 = the pool size now). Enough for any run with at most that many threads; depends on nothing
  // else; no alignment or initial content needed. 0 for the im2col-free 1x1 case.
  size_t scratch_bytes(size_t batch, size_t threads) const;
  // Bytes held by the packed weights, bias and multipliers.
  size_t weight_bytes() const;
  // in: batch x H x W x C uint8; out: batch x OH x OW x O, uint8 (or float when float_output).
  // max_threads 0 = the pool size.
  void run(const uint8_t* in, void* out, size_t batch, uint8_t* scratch, size_t max_threads) const;
  // The same on one dispatch table, which a caller running several steps reads once (internal:
  // only native/src has DispatchTable). The overload above reads the active table once per call.
  void run(const DispatchTable& t, const uint8_t* in, void* out, size_t batch, uint8_t* scratch,
           size_t max_threads) const;

 private:
  Conv2dGeometry g_;
  std::vector<PackedS8B> packed_;  // one per group: K = row_stride_, N = O / groups
  size_t row_stride_ = 0;          // im2col row bytes: patch() rounded up to 4 (zero weights
                                   // there); patch() itself on the im2col-free path
  std::vector<int32_t> bias_;      // O values, or empty
  std::vector<float> scale_;       // O multipliers (requantize or dequantize)
  uint8_t x_zero_point_ = 0;
  uint8_t y_zero_point_ = 0, y_min_ = 0, y_max_ = 255;
  bool float_output_ = false;
  bool depthwise_ = false;          // the direct depthwise kernel (packed_ empty)
  bool indirect_ = false;           // the byte GEMM kernels (VNNI, scalar) read the input through row
                                    // pointers, no im2col; the others still take im2col
  std::vector<int16_t> dw_weight_;  // depthwise weights as [tap][channel]
  // The same for the tap-pair kernels (s8-depthwise.h's pair layout), with bias and scale.
  std::vector<int16_t, CacheAlignedAllocator<int16_t>> dw_pair_weight_;
  std::vector<int32_t, CacheAlignedAllocator<int32_t>> dw_pair_bias_;
  std::vector<float, CacheAlignedAllocator<float>> dw_pair_scale_;
  // Grouped convolutions of 8-channel groups: the direct kernel's weights and folded bias
  // (s8-conv/s8-grouped.h), used where the ISA has the kernel; packed_ serves the others.
  bool grouped_ = false;
  std::vector<int8_t> grouped_weight_;
  std::vector<int32_t> grouped_bias_;
  std::vector<int8_t, CacheAlignedAllocator<int8_t>> dw_quad_weight_;  // the same for the VNNI kernel (s8_depthwise_pack_quads)
  std::vector<int32_t, CacheAlignedAllocator<int32_t>> dw_quad_bias_;
  std::vector<float, CacheAlignedAllocator<float>> dw_quad_scale_;

  // How run() splits the batch's output pixels (rows): `tasks` contiguous ranges, each walked in
  // blocks of at most block_rows rows through its own im2col buffer.
  struct Split {
    size_t rows = 0, tasks = 1, block_rows = 0;
    size_t gemm_threads = 1;  // threads the GEMM may use inside a task (only when tasks == 1)
  };
  bool direct_input() const;  // 1x1, stride 1, unpadded, one group: the input is the GEMM's A
  Split split(size_t batch, size_t threads) const;
  // Scratch bytes of one task walking blocks of block_rows rows (im2col buffer, or row pointers
  // and edge patches).
  size_t task_scratch_bytes(size_t block_rows) const;
  // Output rows [row0, row0 + rows) of group `group` from A = im2col rows (a, lda), or, when
  // `indirect_rows` is set, from the input through those pointers (s8_indirection_nhwc).
  void gemm(const DispatchTable& t, const uint8_t* a, size_t lda, size_t rows, size_t group, void* out,
            size_t row0, size_t threads, const uint8_t* const* indirect_rows = nullptr) const;
  void run_rows(const DispatchTable& t, const uint8_t* in, void* out, size_t row_begin, size_t row_end,
                size_t block_rows, uint8_t* columns, size_t gemm_threads) const;
  void run_depthwise(const DispatchTable& t, const uint8_t* in, void* out, size_t batch, size_t threads) const;
  void run_grouped(const DispatchTable& t, const uint8_t* in, uint8_t* out, size_t batch, size_t threads) const;
};

// ONNX QuantizeLinear: q = saturate(round_half_even(x / scale) + zero_point) (a true division, as
// ONNX specifies), fused with NCHW -> NHWC: in is batch x channels x plane floats, out batch x
// plane x channels bytes (channels = 1 or plane = 1 make it a plain quantize). NaN quantizes to
// the zero point. dtype int8 is handled by callers as uint8 with zero point + 128 and the sign bit
// flipped. scale must be finite and > 0. max_threads 0 = the pool size.
void quantize_u8_nchw_to_nhwc(const float* in, uint8_t* out, size_t batch, size_t channels,
                              size_t plane, float scale, uint8_t zero_point, size_t max_threads = 0);

// ONNX DequantizeLinear: x = float(q - zero_point) * scale, fused with NHWC -> NCHW.
void dequantize_u8_nhwc_to_nchw(const uint8_t* in, float* out, size_t batch, size_t channels,
                                size_t plane, float scale, uint8_t zero_point, size_t max_threads = 0);

// Max pooling on uint8 NHWC: in batch x in_height x in_width x channels, out batch x out_height x
// out_width x channels. Pool2dGeometry counts planes as batch * channels for NCHW; here g.planes is
// ignored and the layout comes from `batch` and `channels` (the parameter added for NHWC). Padding
// never wins (padded positions are skipped, like the float kernel); a window that covers no input
// position yields 0.
void max_pool2d_u8_nhwc(const Pool2dGeometry& g, size_t batch, size_t channels, const uint8_t* in,
                        uint8_t* out, size_t max_threads = 0);

}  // namespace kiln
