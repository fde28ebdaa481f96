// Sparse int8 weights in 1x4 blocks and the two int8 ops that read them: a direct stride-1
// QLinearConv (uint8 NHWC in, requantized uint8 NHWC out, optional fused 2x2/2 max pool) and a
// QLinearGemm (uint8 [batch][K] in, uint8 or float out).
//
// A 1x4 block is 4 consecutive reduction steps of one output: for a convolution, 4 consecutive
// INPUT CHANNELS at one kernel position (kh, kw) (the NHWC reduction order (kh, kw, c), input
// channels padded with zero weights to a multiple of 4), for a Linear layer 4 consecutive input
// features. A block is stored when any of its 4 weights is non-zero, as one 4-byte word: exactly
// one vpdpbusd operand. Zero patterns that are not whole blocks (unstructured pruning) pack into
// the same blocks with their zero bytes inside (fewer blocks skipped; results unchanged).
//
// Results are BIT-EXACT with the dense int8 kernels (S8Conv2dPlan + max_pool2d_u8_nhwc, and
// s8gemm_requantize / s8gemm_dequantize): the int32 sum is sum x * w over the stored blocks (the
// skipped blocks only hold zero weights) plus bias - x_zero_point * (sum of the row's weights),
// wrapping modulo 2^32 like the dense kernels, then the same float32 epilogue
// (quant/requantize.h). Nothing here knows about Node.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/conv.h"
#include "kiln/s8-conv.h"

namespace kiln {

struct DispatchTable;  // internal: one ISA's kernels (native/src/common/dispatch.h)

class PackedSparseS8 {
 public:
  PackedSparseS8() = default;
  // Packs W (rows x depth int8, row stride ldw >= depth, in reduction order). The depth is padded
  // with zero weights to a multiple of 4. Throws std::invalid_argument on a size over 2^31 - 1,
  // ldw < depth, or a null w with rows * depth > 0.
  PackedSparseS8(size_t rows, size_t depth, const int8_t* w, size_t ldw);

  size_t rows() const { return rows_; }
  size_t depth() const { return depth_; }
  size_t groups() const { return (depth_ + 3) / 4; }  // 4-step groups per row (block columns)
  size_t blocks() const { return group_.size(); }     // stored blocks
  size_t nonzeros() const { return nonzeros_; }       // non-zero weights
  // Fraction of zero weights, and of 1x4 blocks skipped (all four weights zero).
  double zero_fraction() const;
  double block_zero_fraction() const;
  size_t bytes() const;

  // Row r's blocks are [row_ptr()[r], row_ptr()[r + 1]), increasing in group; block b covers
  // reduction steps [4 * group()[b], 4 * group()[b] + 4) and its weights are the 4 bytes of
  // word()[b] (little-endian: step 4g + i is byte i).
  const uint32_t* row_ptr() const { return row_ptr_.data(); }
  const uint32_t* group() const { return group_.data(); }
  const int32_t* word() const { return word_.data(); }
  // sum of row r's weights (the zero-point correction is x_zero_point * row_sums()[r]).
  const int32_t* row_sums() const { return row_sums_.data(); }

 private:
  size_t rows_ = 0, depth_ = 0, nonzeros_ = 0;
  std::vector<uint32_t> row_ptr_{0};
  std::vector<uint32_t> group_;
  std::vector<int32_t> word_;
  std::vector<int32_t> row_sums_;
};

// QLinearConv on the sparse kernels, no im2col: per image the uint8 NHWC input is rewritten as
// channel-group planes [C/4][Hp][Wp][4 bytes] (Hp, Wp: padded height and width; the padding and
// the padded channels hold x_zero_point, as the dense path pads), and output position
// p = oy * Wp + ox of channel o is init[o] + sum over o's blocks of dot4(dword(p + offset), word),
// where a block's offset = group * Hp * Wp + kh * dilation_h * Wp + kw * dilation_w. Small images
// with kernels up to 4 wide use an aligned variant: Wp rounded up to 16 dwords and one copy of the
// planes per kernel column, shifted left by kw * dilation_w, so a block's offset (copy kw + group
// plane + kh rows) is a multiple of 16 and every vector load starts on a cache line. Vector lanes
// hold consecutive output positions (the columns ox >= OW are computed and dropped). Each channel's
// plane is then requantized (after a fused 2x2/2 max pool on the int32 sums, which is exact for
// multipliers >= 0: requantization is monotone non-decreasing) and written to the NHWC output.
class S8SparseConv {
 public:
  // True for what the kernel takes: a valid ungrouped stride-1 geometry; with pool2x2 also
  // multipliers >= 0 (not NaN) and an output of at least 2x2.
  static bool fits(const Conv2dGeometry& g, const S8ConvQuant& q, bool pool2x2);
  // weight_oihw: O x C x KH x KW; bias: O values or null. pool2x2: fuse a 2x2 stride-2 unpadded
  // max pool (output floor(OH/2) x floor(OW/2)). Throws std::invalid_argument unless fits().
  S8SparseConv(const Conv2dGeometry& g, const int8_t* weight_oihw, const int32_t* bias, const S8ConvQuant& q,
               bool pool2x2);

  const PackedSparseS8& packed() const { return packed_; }
  const Conv2dGeometry& geometry() const { return g_; }
  size_t pooled_height() const { return pool_ ? g_.out_height / 2 : g_.out_height; }
  size_t pooled_width() const { return pool_ ? g_.out_width / 2 : g_.out_width; }
  // Bytes of scratch run() needs (threads as passed to run; 0 = the pool size). No alignment needed.
  size_t scratch_bytes(size_t batch, size_t threads) const;
  size_t weight_bytes() const;
  // in: batch x H x W x C; out: batch x OH' x OW' x O (pooled sizes when pool2x2).
  void run(const DispatchTable& t, const uint8_t* in, uint8_t* out, size_t batch, uint8_t* scratch,
           size_t max_threads) const;
  // The same on the active table.
  void run(const uint8_t* in, uint8_t* out, size_t batch, uint8_t* scratch, size_t max_threads) const;

 private:
  static constexpr size_t kMaxAlignedKw = 4;
  static constexpr size_t kMaxAlignedBytes = size_t{256} << 10;
  size_t copy_dwords() const;   // one copy of the rewritten input, with its slack
  size_t image_dwords() const;  // the rewritten input of one image: 1 or kernel_w copies
  size_t acc_ints() const;      // one channel's int32 plane, with its slack
  size_t values_stride() const; // one channel's outputs (int32, before requantizing)
  size_t slot_bytes() const;
  void transform(const DispatchTable& t, const uint8_t* in, uint8_t* x) const;
  void channels(const DispatchTable& t, const uint8_t* x, uint8_t* out, size_t o0, size_t o1, int32_t* acc) const;

  Conv2dGeometry g_;
  bool pool_ = false;
  PackedSparseS8 packed_;
  size_t hp_ = 0, wp_ = 0, rows_ = 0, positions_ = 0;
  bool aligned_ = false;  // one copy of the planes per kernel column, pitch a multiple of 16
  std::vector<int32_t> offset_;  // per stored block: dword offset
  std::vector<int32_t> init_;    // O: bias - x_zero_point * row sum (wrapping)
  std::vector<float> scale_;     // O multipliers
  uint8_t x_zero_point_ = 0;
  float lo_ = 0, hi_ = 255;
  int32_t y_zero_point_ = 0;
};

// QLinearGemm on the sparse kernels: out[i][n] = epilogue(sum_k (a[i][k] - za) * W[n][k] + bias[n]).
// From 8 images up the batch sits in vector lanes (the input transposed once per call into
// [K/4][batch][4 bytes], each stored block one vpdpbusd of its broadcast word); below, each
// image's row is read through the blocks' group indices (a gather of 16 blocks per vpdpbusd).
class S8SparseGemm {
 public:
  // w: trans ? N x K : K x N. scale: N multipliers (requantize: sa * sw / so; float: sa * sw).
  // Throws std::invalid_argument on a null pointer with a non-empty size or y_min > y_max.
  S8SparseGemm(size_t k, size_t n, const int8_t* w, bool trans, const int32_t* bias, const float* scale,
               uint8_t a_zero_point, bool float_output, uint8_t y_zero_point, uint8_t y_min, uint8_t y_max);

  const PackedSparseS8& packed() const { return packed_; }
  bool float_output() const { return float_output_; }
  size_t scratch_bytes(size_t batch, size_t threads) const;
  size_t weight_bytes() const;
  // a: batch x K uint8 (row stride K); out: batch x N uint8, or float when float_output.
  void run(const DispatchTable& t, const uint8_t* a, void* out, size_t batch, uint8_t* scratch,
           size_t max_threads) const;
  void run(const uint8_t* a, void* out, size_t batch, uint8_t* scratch, size_t max_threads) const;

  // Batches from this size up put the batch in lanes.
  static constexpr size_t kLanesFrom = 8;
  // Largest K (the constructor throws std::invalid_argument above it).
  static constexpr size_t kMaxDepth = size_t{0x7fffffff} / 256;

 private:
  PackedSparseS8 packed_;
  std::vector<int32_t> init_;
  std::vector<float> scale_;
  bool float_output_ = false;
  float lo_ = 0, hi_ = 255;
  int32_t y_zero_point_ = 0;
  uint8_t a_zero_point_ = 0;
};

}  // namespace kiln
