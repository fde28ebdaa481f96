// Direct sparse fp32 convolution (no im2col): for stride-1, ungrouped convolutions whose weights
// are mostly zero. Nothing here knows about Node.
//
// The output is laid on the padded input's row pitch Wp, so output position p = oy * Wp + ox reads
// input (ic, p + kh * dil_h * Wp + kw * dil_w): every non-zero weight (oc, ic, kh, kw) is one
// element offset into the padded input planes and one value, and a vector of consecutive output
// positions is one unaligned load of an input plane times the broadcast weight (the columns
// ox >= OW of each row are computed and thrown away). Blocks of 4 or 8 output channels that share
// a tap (patterns 4x1 / 8x1) share the loads; 1x4 is packed as unstructured (its blocks run along
// the taps, which gain nothing here). Padded inputs are copied per image into scratch with their
// zero border; unpadded ones are read in place.
//
// An optional max pool (ConvMaxPool) runs on each output channel while its plane is still in a
// small cache-resident buffer, writing the pooled NCHW planes directly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/conv.h"
#include "kiln/f32-gemm.h"
#include "kiln/sparse.h"

namespace kiln {

struct F32SparseConvKernels;  // internal: one ISA's kernels (native/src/sparse/sparse-conv-ukernel.h)

class SparseConvF32 {
 public:
  // True for a valid, ungrouped, stride-1 geometry whose padded planes index in 31 bits.
  static bool supports(const Conv2dGeometry& g);

  // Packs the OIHW weights (g.out_channels x g.patch(), zeros dropped) in blocks of `pattern`;
  // bias: out_channels values or null. Throws std::invalid_argument when !supports(g), on a null
  // weight, or an unknown pattern.
  SparseConvF32(const Conv2dGeometry& g, const float* weight, const float* bias, bool relu, SparsePattern pattern);

  const Conv2dGeometry& geometry() const { return g_; }
  // The pattern the kernels run (1x4 reads as unstructured).
  SparsePattern pattern() const { return pattern_; }
  size_t block_rows() const { return br_; }
  size_t nonzeros() const { return nonzeros_; }
  size_t blocks() const { return offset_.size(); }
  size_t bytes() const;

  // Floats of scratch run() needs for `batch` images when its max_threads is at most `threads`
  // (0: the pool size now), for this pool (null: none).
  size_t scratch_floats(size_t batch, size_t threads, const ConvMaxPool* pool = nullptr) const;

  // output = [maxpool](relu?(conv(input) + bias)): input batch x Cin x H x W, output batch x Cout x
  // OH x OW, or x pool->out_h x pool->out_w when pool is not null (fully overwritten). Throws
  // std::invalid_argument when pool is not a valid ConvMaxPool over this geometry with every window
  // inside the output (ConvMaxPool::interior). Results do not
  // depend on the number of threads. The overload without a table runs the active ISA's kernels.
  void run(const float* input, float* output, size_t batch, const ConvMaxPool* pool, float* scratch,
           size_t max_threads = 0) const;
  void run(const F32SparseConvKernels& kern, const float* input, float* output, size_t batch, const ConvMaxPool* pool,
           float* scratch, size_t max_threads = 0) const;

 private:
  void run_task(const F32SparseConvKernels& kern, const float* image, float* out_image, size_t g_begin, size_t g_end,
                const ConvMaxPool* pool, float* slot_scratch) const;
  size_t spans_rows(const ConvMaxPool* pool) const;
  size_t buffer_floats(const ConvMaxPool* pool) const;

  Conv2dGeometry g_;
  SparsePattern pattern_ = SparsePattern::kUnstructured;
  size_t br_ = 1, nonzeros_ = 0;
  size_t hp_ = 0, wp_ = 0;  // padded input height and row pitch
  bool padded_ = false;
  bool relu_ = false;
  std::vector<uint32_t> group_ptr_;  // blocks of output-channel group r: [group_ptr_[r], group_ptr_[r + 1])
  std::vector<int32_t> offset_;      // per block: element offset of its tap in the padded image
  AlignedFloats values_;             // br_ per block (zeros of a partly zero block kept)
  std::vector<float> bias_;          // out_channels values, zeros when there was none
};

}  // namespace kiln
