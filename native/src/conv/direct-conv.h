// Direct convolution with the output channels in AVX-512 lanes (the MLAS NCHWc idea, on plain
// NCHW input): no column matrix is written. A tile of up to 6 x 64 (pixels of one output row x
// output channels) is summed in registers over K = Cin*KH*KW, each input value broadcast from the
// input plane itself, so the only memory traffic is the input (L1) and one K x 64 weight block
// (L2). Output goes to a per-image NHWC buffer that stays in cache, from which a ReLU'd, max-pooled
// or plain NCHW result is written.
//
// The sum runs over k in im2col order (c, kh, kw) with one FMA chain per output, the bias added
// after, exactly like the packed GEMM's micro-kernel for K <= 384: the two paths agree bit for bit
// there. Only groups == 1 and no padding take this path (see direct_conv_forward_fits); a stride of
// 2 along the width reads every other input column (the stems, on a zero-padded copy of the image:
// no tap of the kernel is wasted, unlike the stride-phase split).
#pragma once
#include <cstddef>
#include <limits>
#include <cstdint>
#include <vector>

#include "kiln/conv.h"
#include "kiln/f32-gemm.h"

namespace kiln {

// Output channels per weight block: 4 zmm columns of the tile.
constexpr size_t kDirectConvBlock = 64;

// Everything the AVX-512 kernels read, as plain pointers (no STL in the ISA file).
struct DirectConvArgs {
  const float* weight = nullptr;   // blocks of 64 channels: block b at b*K*64, rows of nb*16 floats
  const float* bias = nullptr;     // cout_padded floats (zeros past Cout or without bias)
  const int32_t* offsets = nullptr;  // K input offsets of tap k from the window's corner
  size_t k = 0;
  size_t cout_padded = 0;          // Cout rounded up to 16: the NHWC row stride
  size_t in_width = 0, stride_h = 1, stride_w = 1;  // stride_w: 1 or 2
  size_t out_height = 0, out_width = 0;
  // Bounds applied to each output after the bias, y = min(hi, max(lo, y)) with NaN passing (as the
  // GEMM epilogue's ReLU): lo 0 for a ReLU, raised by a fused clamp; -inf and +inf for neither.
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
};

// geometry allows the direct path (groups 1, no padding, stride_w 1, a window larger than 1x1, K
// small enough for a weight block to stay in L2): the forward pass and the weight gradient.
// A strided 1x1 convolution (ResNet's downsample) is a GEMM over a gather of every other pixel:
// the direct kernel ran ResNet-50's 1x1/2 1024->2048 at 22% of the FMA peak, im2col + GEMM at 47%.
bool direct_conv_fits(const Conv2dGeometry& g);
// The forward kernels also take stride_w 2.
bool direct_conv_forward_fits(const Conv2dGeometry& g);

// Weights repacked for the direct kernels, and the tap offsets.
class DirectConvWeights {
 public:
  DirectConvWeights() = default;
  DirectConvWeights(const Conv2dGeometry& g, const float* weight, const float* bias);
  // Fills everything but the bounds.
  DirectConvArgs args() const;
  // Floats of one image's NHWC output: OH * OW * cout_padded.
  size_t image_floats() const { return image_floats_; }
  size_t bytes() const { return (weight_.size() + bias_.size()) * sizeof(float) + offsets_.size() * sizeof(int32_t); }
  bool empty() const { return weight_.empty(); }

 private:
  Conv2dGeometry g_;
  size_t cout_padded_ = 0, image_floats_ = 0;
  AlignedFloats weight_;
  std::vector<float> bias_;
  std::vector<int32_t> offsets_;
};

// grad_weight (OIHW, overwritten) of a convolution the direct path fits, on AVX-512: taps x output
// channels summed in registers over every output pixel, reading the input in place (no column
// matrix) and grad_output transposed per image to NHWC. Images are split into contiguous runs per
// slot (fixed by the batch), each summed in image then pixel order, and the slots added in order:
// the result does not depend on the thread count. Returns false (writing nothing) where the
// direct path does not apply or the active ISA lacks AVX-512.
// With grad_bias (not null) the bias gradient comes from the same pass over grad_output, summed in
// double in that order and rounded once.
bool direct_conv_weight_gradient(const Conv2dGeometry& g, size_t batch, const float* input, const float* grad_output,
                                 float* grad_weight, float* grad_bias, size_t max_threads);

// sums[c] += the sum over `pixels` NHWC rows of nhwc[p * cout_padded + c], in double, pixels in order.
void nhwc_column_sums_avx512(const float* nhwc, size_t pixels, size_t cout_padded, double* sums);

// partial[k * ld + c] (+)= sum over the OH x OW output pixels of one image of
// x[offsets[k] + oh * stride_h * in_width + ow] * g[(oh * OW + ow) * ld + c], for taps k in
// [k0, k1) and channels c in [c0, c0 + 16 * nb). `first`: overwrite instead of adding.
void direct_conv_weight_rows_avx512(const float* x, const int32_t* offsets, size_t k0, size_t k1, const float* g,
                                    size_t ld, size_t c0, size_t nb, size_t out_height, size_t out_width,
                                    size_t in_width, size_t stride_h, bool first, float* partial);

// NCHW planes of one image to NHWC rows of `cout_padded` floats (channels past `channels` zero).
void nchw_to_nhwc_avx512(const float* nchw, size_t pixels, size_t channels, size_t cout_padded, float* nhwc);

// Output rows [oh0, oh1), columns [0, cols) of one image (CHW at `input`), sum + bias, then the
// bounds, into rows[((oh - oh0) * cols + ow) * cout_padded + c].
void direct_conv_rows_avx512(const DirectConvArgs& args, const float* input, size_t oh0, size_t oh1, size_t cols,
                             float* rows);

// NHWC rows to NCHW planes `plane_stride` apart: out[c * plane_stride + p] = nhwc[p * cout_padded + c]
// for p < pixels (a whole image, plane_stride = pixels, or a band of its rows).
void nhwc_to_nchw_avx512(const float* nhwc, size_t pixels, size_t channels, size_t cout_padded, float* out,
                         size_t plane_stride);

// Pooled rows [y0, y1) from the NHWC conv rows [row0, row_end) held in `rows`, `cols` wide:
// pooled[(y * out_w + x) * cout_padded + c] for y in [y0, y1), NHWC too. A window's taps outside
// the rows held or the columns [0, cols) are skipped (the caller holds every row and column of the
// output the windows read, so those are the padding and overhang), each window keeping at least
// one. The first tap of a window wins ties, a NaN takes over from a number (never the reverse),
// as max_pool2d_forward does. When `where` is not null it receives, at the same positions, the
// winner's flat offset in the convolution's output plane, `plane_width` wide.
void nhwc_max_pool_rows_avx512(const float* rows, size_t row0, size_t row_end, size_t cols, size_t cout_padded,
                               const ConvMaxPool& pool, size_t y0, size_t y1, size_t plane_width, float* pooled,
                               int32_t* where);

}  // namespace kiln
