// Winograd F(2x2, 3x3) convolution for inference: 3x3 kernels, stride 1, undilated, one group.
// A 2x2 output tile is A^T [U ⊙ V] A with U = G g G^T (4x4, per input/output channel pair,
// transformed once when the plan is built) and V = B^T d B (per input channel and tile): 16
// multiply-adds per tile and channel pair where the direct sum takes 36 (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016; NNPACK and XNNPACK use the same transform).
// The 16 element-wise products summed over input channels are 16 small GEMMs, output channels in
// AVX-512 lanes.
//
// The result is not bit-identical to the direct sum: the transforms add and subtract, so rounding
// differs (about 1e-6 relative here, see test/kernels/winograd.test.ts). That is why only
// InferenceSession's Conv steps use it, and only at graphOptimizationLevel 'all' (the default);
// training and the kernel entry points keep the direct and GEMM paths, which agree bit for bit.
//
// With a fused 2x2/2 max pool, each tile is exactly one pool window: the tile's four outputs are
// pooled in registers and only the pooled plane is written.
#pragma once
#include <cstddef>

#include "kiln/conv.h"
#include "kiln/f32-gemm.h"

namespace kiln {

// What the AVX-512 image kernel reads (no STL in the ISA file).
struct WinogradArgs {
  const float* u = nullptr;     // transformed weights: [16][cin][cout_padded]
  const float* bias = nullptr;  // cout_padded floats (zeros past Cout or without bias)
  size_t cin = 0, cin_padded = 0, cout = 0, cout_padded = 0;
  size_t in_height = 0, in_width = 0, pad_top = 0, pad_left = 0;
  size_t out_height = 0, out_width = 0;  // of the convolution
  size_t tiles_h = 0, tiles_w = 0;       // tile grid computed (the pooled plane when pooled)
  size_t band_rows = 0;                  // tile rows transformed and multiplied at a time
  bool pooled = false, relu = false;
};

// The geometry takes the Winograd path: 3x3, stride 1, dilation 1, groups 1, at least 8 input and
// 16 output channels (below that the direct kernels do as well), and Cin * Cout <= 8192 so that the
// transformed weights (64 bytes per channel pair) stay within L2 (larger layers would stream them
// from memory for every band).
bool winograd_fits(const Conv2dGeometry& g);

// A 2x2 window with stride 2, undilated, whose windows are exactly the 2x2 output tiles.
bool winograd_pool_fits(const Conv2dGeometry& g, const ConvMaxPool& pool);

class WinogradConv {
 public:
  // weight: OIHW; bias: Cout floats or null. Only for geometries winograd_fits accepts.
  WinogradConv(const Conv2dGeometry& g, const float* weight, const float* bias);

  // The active ISA runs the kernel (AVX-512).
  static bool available();
  // Floats of scratch run() needs for this batch and thread count.
  size_t scratch_floats(size_t batch, size_t max_threads, const ConvMaxPool* pool) const;
  // output = conv(input) + bias, ReLU when `relu`, then with `pool` (winograd_pool_fits) the 2x2/2
  // max pool: NCHW in and out, one image per task.
  void run(const float* input, float* output, size_t batch, const ConvMaxPool* pool, bool relu, float* scratch,
           size_t max_threads) const;
  size_t bytes() const { return (u_.size() + bias_.size()) * sizeof(float); }

 private:
  WinogradArgs args(const ConvMaxPool* pool, bool relu) const;
  size_t slots(size_t batch, size_t max_threads) const;

  Conv2dGeometry g_;
  size_t cin_padded_ = 0, cout_padded_ = 0;
  AlignedFloats u_;
  AlignedFloats bias_;
};

// Floats of scratch one image needs under `a`.
size_t winograd_image_floats(const WinogradArgs& a);

// One image: NCHW `image` (Cin x H x W) to NCHW `out` (Cout x OH x OW, or the pooled plane).
void winograd_image_avx512(const WinogradArgs& a, const float* image, float* out, float* scratch);

}  // namespace kiln
