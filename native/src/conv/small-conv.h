// Direct convolution for a small patch (SeedCNN conv1: Cin 1 or 3, 3x3, stride 1, no padding),
// with output PIXELS in AVX-512 (or AVX2) lanes. The channels-in-lanes kernel (direct-conv.h) spends most of
// its time in its epilogue and NHWC transpose when K = Cin*KH*KW is 9; here a 16-pixel segment of
// an output row loads its few input vectors once and every output channel is summed from them
// with broadcast weights, written straight into the NCHW plane. With a fused 2x2/2 max pool the
// input columns are split into even and odd ones on loading, so the four convolution outputs of a
// pooled pixel are four accumulators in the same lane, and only the rows and columns the pool
// reads are computed.
//
// Same sum as every other forward path: acc = 0, one FMA per tap in im2col order (c, kh, kw), the
// bias added after, then ReLU as max(0, y); results match the packed GEMM and the channels-in-lanes
// kernel bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/conv.h"

namespace kiln {

// What the AVX-512 kernels read, as plain pointers and sizes (no STL in the ISA file).
struct SmallConvArgs {
  const float* weight = nullptr;  // OIHW as given
  const float* bias = nullptr;    // out_channels floats (zeros without bias)
  size_t in_channels = 0, in_height = 0, in_width = 0;
  size_t out_channels = 0, out_height = 0, out_width = 0;
  size_t kernel_h = 0, kernel_w = 0;
  bool relu = false;
};

// The (Cin, KH, KW) shapes the kernels are instantiated for, in table order: 3x3 over 1-4
// channels, 5x5 over 1. Past a few input channels the channels-in-lanes kernel (direct-conv.h) is
// as fast, and a segment's input vectors no longer fit in registers. Each ISA file builds its
// kernel table from this list; small_conv_fits and run_small_conv read it too.
#define KILN_SMALL_CONV_SHAPES(X) X(1, 3, 3) X(2, 3, 3) X(3, 3, 3) X(4, 3, 3) X(1, 5, 5)

// The geometry has a kernel instantiated for it: groups 1, no padding, stride and dilation 1, and
// (Cin, KH, KW) one of KILN_SMALL_CONV_SHAPES.
bool small_conv_fits(const Conv2dGeometry& g);

// A 2x2 window with stride 2, undilated, over the whole output of `g` (floor(OH/2) x floor(OW/2),
// the size the kernel writes): the pool the fused kernel computes.
bool small_conv_pool_fits(const Conv2dGeometry& g, const ConvMaxPool& pool);

class SmallConvWeights {
 public:
  SmallConvWeights(const Conv2dGeometry& g, const float* weight, const float* bias);
  // Fills everything but `relu`.
  SmallConvArgs args() const;
  size_t bytes() const { return (weight_.size() + bias_.size()) * sizeof(float); }

 private:
  Conv2dGeometry g_;
  std::vector<float> weight_, bias_;
};

// One ISA's kernels for one shape: the plain convolution, and the fused pool without and with
// winner indices.
struct SmallConvKernels {
  void (*plain)(const SmallConvArgs&, const float* input, float* output);
  void (*pooled)(const SmallConvArgs&, const float* input, float* output, int32_t* indices);
  void (*pooled_indices)(const SmallConvArgs&, const float* input, float* output, int32_t* indices);
};

// One image through the entry of `table` (an ISA's kernels, in KILN_SMALL_CONV_SHAPES order) for
// the shape of `args`: the plain convolution, or with `pooled` the fused pool (indices when not
// null). Does nothing for a shape outside the list.
void run_small_conv(const SmallConvKernels* table, const SmallConvArgs& args, const float* input, float* output,
                    bool pooled, int32_t* indices);

// One image: input CHW, output out_channels planes of out_height x out_width, fully written.
void small_conv_image_avx512(const SmallConvArgs& args, const float* input, float* output);

// One image with the fused 2x2/2 max pool: output out_channels planes of
// (out_height / 2) x (out_width / 2). The first tap of a window wins ties and a NaN takes over
// from a number, as max_pool2d_forward does; `indices` (null: none, else the same layout as
// output) gets each winner's flat offset in its convolution output plane.
void small_conv_max_pool_image_avx512(const SmallConvArgs& args, const float* input, float* output,
                                      int32_t* indices);

// The same on AVX2 (8 pixels in lanes), bit for bit.
void small_conv_image_avx2(const SmallConvArgs& args, const float* input, float* output);
void small_conv_max_pool_image_avx2(const SmallConvArgs& args, const float* input, float* output, int32_t* indices);

}  // namespace kiln
