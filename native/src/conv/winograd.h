// Winograd convolution for inference: 3x3 kernels, stride 1, undilated, one group, in two tile
// sizes. F(m x m, 3x3) computes an m x m output tile as A^T [U ⊙ V] A with U = G g G^T (per
// input/output channel pair, transformed once when the plan is built) and V = B^T d B (per input
// channel and tile), both (m + 2) x (m + 2) (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016; NNPACK and XNNPACK use the same transforms):
//   F(2x2, 3x3): 16 multiply-adds per 4 outputs and channel pair (the direct sum takes 36);
//   F(4x4, 3x3): 36 per 16 outputs (the direct sum takes 144), for larger transforms.
// The (m + 2)^2 element-wise products summed over input channels are as many small GEMMs, output
// channels in AVX-512 lanes.
//
// The result is not bit-identical to the direct sum: the transforms add and subtract (F(4x4) also
// scales by up to 8 and 1/24), so rounding differs (about 1e-6 relative for F(2x2), a few times
// that for F(4x4); see test/kernels/plan-ops.test.ts). That is why only InferenceSession's Conv
// steps use it, and only at graphOptimizationLevel 'all' (the default); training and the kernel
// entry points keep the direct and GEMM paths, which agree bit for bit.
//
// A NaN reaches exactly the outputs whose window holds it under F(2x2), whose transforms keep the
// direct sum's structural zeros. F(4x4)'s do not (input column 3 of a tile enters output column
// 0's sum, times 0): it would spread the NaN over the whole 4 x 4 tile, so an image holding an
// infinity or NaN runs F(2x2) instead (found by one pass over the staged copy of the image, which
// is in L1 or L2 then: 6,272 floats for SeedCNN CIFAR's conv2).
//
// With a fused 2x2/2 max pool, each pool window lies inside one tile (tiles start at even
// coordinates): the windows are pooled in registers and only the pooled plane is written.
#pragma once
#include <cstddef>

#include "kiln/conv.h"
#include "kiln/f32-gemm.h"

namespace kiln {

struct DispatchTable;

// What the AVX-512 image kernel reads (no STL in the ISA file).
struct WinogradArgs {
  size_t m = 2;                 // output tile side: 2 or 4
  const float* u = nullptr;     // transformed weights: [(m + 2)^2][cin][cout_padded]
  const float* bias = nullptr;  // cout_padded floats (zeros past Cout or without bias)
  size_t cin = 0, cin_padded = 0, cout = 0, cout_padded = 0;
  size_t in_height = 0, in_width = 0, pad_top = 0, pad_left = 0;
  size_t out_height = 0, out_width = 0;  // the plane written: the convolution's, or the pooled one
  size_t tiles_h = 0, tiles_w = 0;       // tile grid computed
  size_t band_rows = 0;                  // tile rows transformed and multiplied at a time
  // Images whose whole tile grids are transformed and multiplied together (winograd_group_avx512):
  // above 1 only for F(2x2) weights past the L2 on small planes, so that U comes in once per group.
  size_t group = 1;
  bool pooled = false, relu = false;
  // The output planes hold a residual already: each output is added to it as it moves home, and
  // the ReLU (relu) comes after the sum (never with pooled).
  bool accumulate = false;
};

// The geometry takes the Winograd path: 3x3, stride 1, dilation 1, groups 1, at least 8 input and
// 16 output channels (below that the direct kernels do as well), and Cin * Cout <= 512 x 512 (the
// transformed weights of F(2x2), 64 bytes per channel pair, up to 16 MiB; past 256 x 256 channels
// only from batch 2 on: winograd_min_batch).
bool winograd_fits(const Conv2dGeometry& g);

// A 2x2 window with stride 2, undilated, each window inside one output tile.
bool winograd_pool_fits(const Conv2dGeometry& g, const ConvMaxPool& pool);

// The smallest batch from which a plan choosing by cost runs a geometry winograd_fits accepts as
// Winograd (im2col + GEMM below it). 1 up to 256 x 256 channels when F(2x2)'s transformed weights
// fit in the L2 (l2_cache_bytes()) or one image brings at least 36 tiles (a 12 x 12 output).
// Weights past the L2 (ResNet-50's 256 x 256 layers on 14x14, 4 MiB) come from L3 or memory once
// per band, so their bands are whole images, grouped up to 96 tiles (WinogradArgs::group): with
// bands of one tile row they lost to the GEMM in the whole model. Otherwise (larger weights, fewer
// tiles: ResNet's 512 x 512 on 7x7, GoogLeNet's 160 -> 320 on 7x7) the batch that brings 32 tiles,
// and at least 2.
size_t winograd_min_batch(const Conv2dGeometry& g);

// The tile side for a geometry winograd_fits accepts (and its fused pool, or null): 4 where
// F(4x4) needs at most 3/4 of F(2x2)'s multiply-adds over the tiles the output needs (partial
// tiles count whole) and its transformed weights (144 bytes per channel pair) take at most about
// 42% of the L2 (432 KiB of a 1 MiB one); else 2. SeedCNN's CIFAR conv2 (12 x 12 outputs under the pool, 32 -> 64): 9 tiles x 36 against
// 36 x 16, 4; its MNIST conv2 (10 x 10): 9 x 36 against 25 x 16, 2.
size_t winograd_tile_for(const Conv2dGeometry& g, const ConvMaxPool* pool);

class WinogradConv {
 public:
  // weight: OIHW; bias: Cout floats or null; tile: 2 or 4. Only for geometries winograd_fits accepts.
  WinogradConv(const Conv2dGeometry& g, const float* weight, const float* bias, size_t tile);

  // `t` has a Winograd kernel (AVX-512 and up; null below).
  static bool available(const DispatchTable& t);
  // Floats of scratch run() needs for this batch and thread count.
  size_t scratch_floats(size_t batch, size_t max_threads, const ConvMaxPool* pool) const;
  // output = conv(input) + bias, ReLU when `relu`, then with `pool` (winograd_pool_fits) the 2x2/2
  // max pool: NCHW in and out, one image per task, on `t`'s kernel. False, touching nothing, when
  // `t` has none (available(t) is false): the caller runs another path. The caller reads the table
  // once and passes the same one to every step, so the check and the call cannot disagree. With
  // `accumulate` (no pool) the output holds a residual: output = relu?(conv(input) + bias + output),
  // a residual block's sum written over its residual.
  [[nodiscard]] bool run(const DispatchTable& t, const float* input, float* output, size_t batch,
                         const ConvMaxPool* pool, bool relu, float* scratch, size_t max_threads,
                         bool accumulate = false) const;
  size_t bytes() const { return (u_.size() + u2_.size() + bias_.size()) * sizeof(float); }
  size_t tile() const { return m_; }

 private:
  WinogradArgs args(const ConvMaxPool* pool, bool relu, size_t m) const;
  size_t slots(size_t batch, size_t max_threads) const;
  size_t image_floats(const ConvMaxPool* pool) const;
  // F(m x m)'s transformed weights do not fit in the L2: each band reads them from beyond it.
  bool weights_streamed(size_t m) const;

  Conv2dGeometry g_;
  size_t m_ = 2;
  size_t cin_padded_ = 0, cout_padded_ = 0;
  AlignedFloats u_;
  AlignedFloats u2_;  // F(2x2) weights too when m_ is 4: the images holding an infinity or NaN
  AlignedFloats bias_;
};

// Floats of scratch one image needs under `a`: its padded NHWC copy, then one band's buffers (for
// a.group images: a group's).
size_t winograd_image_floats(const WinogradArgs& a);
size_t winograd_padded_floats(const WinogradArgs& a);
size_t winograd_band_floats(const WinogradArgs& a);

// One image: NCHW `image` (Cin x H x W) to NCHW `out` (Cout x OH x OW, or the pooled plane).
// F(4x4) returns false, writing nothing, for an image holding an infinity or NaN (see WinogradConv).
bool winograd_image_avx512(const WinogradArgs& a, const float* image, float* out, float* scratch);
// The same in two parts, for one image split over threads: the padded copy into `padded`
// (winograd_padded_floats; false for F(4x4) on a non-finite image), then tile rows [ty_begin,
// ty_end) from it, with `band` scratch (winograd_band_floats) per thread.
bool winograd_stage_avx512(const WinogradArgs& a, const float* image, float* padded);
// `count` (at most a.group) consecutive images, `in_image` and `out_image` floats apart, as one
// band: F(2x2) only (never declines), with scratch of winograd_image_floats(a).
void winograd_group_avx512(const WinogradArgs& a, const float* input, size_t in_image, float* output, size_t out_image,
                           size_t count, float* scratch);
void winograd_bands_avx512(const WinogradArgs& a, const float* padded, float* out, float* band, size_t ty_begin,
                           size_t ty_end);

}  // namespace kiln
