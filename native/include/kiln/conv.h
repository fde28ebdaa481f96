// 2-D convolution, NCHW input / OIHW weight: training (forward, backward) and a prepacked plan
// for inference. Nothing here knows about Node.
//
// Work is split into "items" (a few whole images, or a column tile of one large image) chosen
// from the geometry and batch only, never from the thread count, so every result is the same
// whatever the number of threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kiln/f32-gemm.h"

namespace kiln {

class DirectConvWeights;
class PhasePlanes;
struct DispatchTable;  // internal: one ISA's kernels (native/src/common/dispatch.h)
class SmallConvWeights;
struct ConvTiling;     // internal: how a run splits into GEMMs (native/src/conv/conv2d-tiling.h)

// Output length of a sliding window along one axis:
// floor((in + pad_begin + pad_end - dilation*(kernel-1) - 1) / stride) + 1,
// or 0 when the window does not fit (or kernel, stride or dilation is 0).
size_t window_output_size(size_t in, size_t pad_begin, size_t pad_end, size_t kernel, size_t stride,
                          size_t dilation);

// Everything about a convolution except the batch size.
struct Conv2dGeometry {
  size_t in_channels = 0, in_height = 0, in_width = 0;
  size_t out_channels = 0, out_height = 0, out_width = 0;
  size_t kernel_h = 1, kernel_w = 1;
  size_t stride_h = 1, stride_w = 1;
  size_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  size_t dilation_h = 1, dilation_w = 1;
  size_t groups = 1;

  size_t in_channels_per_group() const { return in_channels / groups; }
  size_t out_channels_per_group() const { return out_channels / groups; }
  size_t in_plane() const { return in_height * in_width; }
  size_t out_plane() const { return out_height * out_width; }
  // Depth of the product for one group: Cin/groups * KH * KW.
  size_t patch() const { return in_channels_per_group() * kernel_h * kernel_w; }
  size_t weight_size() const { return out_channels * patch(); }
  // 1x1, stride 1, no padding: the input planes already are the column matrix.
  bool is_pointwise() const;
};

// True when every count is >= 1 where it must be, groups divide both channel counts, and
// out_height/out_width equal window_output_size(...). Kernels assume a valid geometry.
bool conv2d_geometry_valid(const Conv2dGeometry& g);

// The same convolution on its input with the padding made part of it (the input grown by the
// pads, which the caller fills: zeros, or a quantized input's zero point), pads 0.
Conv2dGeometry padding_made_real(const Conv2dGeometry& g);

// A max pool over a convolution's output: pooled row y's window covers the convolution rows
// y * stride_h - pad_top + i * dilation_h (i < kernel_h), likewise columns. Windows may reach
// past the output on any side (padding before, a ceil-mode overhang after): taps outside it are
// skipped, as max_pool2d_forward skips padding, but each window must cover at least one output.
struct ConvMaxPool {
  size_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  size_t out_h = 0, out_w = 0;
  size_t pad_top = 0, pad_left = 0;
  // Every window inside the output (the paths that fuse only such pools check this).
  bool interior(size_t conv_h, size_t conv_w) const {
    return pad_top == 0 && pad_left == 0 && (out_h - 1) * stride_h + dilation_h * (kernel_h - 1) < conv_h &&
           (out_w - 1) * stride_w + dilation_w * (kernel_w - 1) < conv_w;
  }
};

// True when each of `out` windows (kernel taps `dilation` apart, starting stride * y - pad) over
// an axis of `in` positions covers at least one of them.
bool max_pool_windows_cover(size_t in, size_t kernel, size_t stride, size_t dilation, size_t pad, size_t out);

// True when `pool` is a valid ConvMaxPool over the output of `g`: counts >= 1 and every window
// covering at least one output position (max_pool_windows_cover on both axes).
bool conv_max_pool_valid(const Conv2dGeometry& g, const ConvMaxPool& pool);

// A convolution with its weights packed once, for repeated inference.
//
//   Conv2dPlan plan(geometry, weight, bias, relu);   // weight: OIHW, bias: Cout or nullptr
//   std::vector<float> scratch(plan.scratch_floats(batch));
//   plan.run(input, output, batch, scratch.data(), max_threads);
//
// `run` computes output = conv(input) + bias, then ReLU when `relu`. Input is batch x Cin x H x W,
// output batch x Cout x OH x OW (fully overwritten). The weight and bias arrays are copied at
// construction and need not outlive the plan. `run` is const and thread-safe: several runs may
// share one plan as long as each has its own scratch. It parallelises over work items when there
// are several (each on one thread), else inside the GEMM; max_threads 0 = the pool size.
// The packed layout is valid for every ISA, so switching ISA after construction is fine.
// Depthwise convolutions (Cin/groups == 1, groups > 1) keep the weights as given and run a
// direct planar kernel (conv/depthwise.h): a GEMM per group would be a single row deep; they also
// take an output clamp (fuse_clamp: ReLU6, Clip) inside the kernel. Unpadded, ungrouped convolutions
// with stride_w 1 or 2 also keep a copy for the AVX-512 direct kernel (conv/direct-conv.h), used when
// the active ISA has AVX-512 (it matches the GEMM path bit for bit up to 384 taps); those with a
// small patch (3x3 over <= 4 input channels, stride 1: conv/small-conv.h) run a kernel with the
// pixels in lanes instead on AVX-512 and AVX2, bit for bit the same too.
class Conv2dPlan {
 public:
  Conv2dPlan() = default;
  Conv2dPlan(const Conv2dGeometry& geometry, const float* weight, const float* bias, bool relu);

  const Conv2dGeometry& geometry() const { return g_; }
  bool relu() const { return relu_; }
  // True when a stride-2 convolution over few channels (the 7x7/2 and 3x3/2 stems) runs on table
  // t as a stride-1 one over its stride phases; false where it runs as it is (on AVX-512, the
  // direct kernel over a zero-padded copy of each image) or is no stem.
  bool phase_split(const DispatchTable& t) const;
  // True when a stride-2 convolution runs on table t as it is on the direct kernel over a
  // zero-padded copy of each image (or the image itself when unpadded): the stems, and padded
  // stride-2 convolutions whose patch the direct kernel takes (AVX-512).
  bool strided_direct(const DispatchTable& t) const { return strided_direct_active(t); }
  // Clamps every output to [lo, hi] after bias and ReLU (Clip, ReLU6; NaN passes), inside the
  // kernels where they can (depthwise, the GEMM epilogue), else as a pass over the output (the
  // direct and small-patch paths; after the pool in run_max_pooled, which it commutes with, so
  // only the staged pool's tie-breaking indices can differ). Returns true: the caller skips its
  // own clamp. A second call narrows the bounds.
  bool fuse_clamp(float lo, float hi);
  // An element-wise function run in place on every output after the bias, ReLU and clamp:
  // fn(ctx, values, n) (SiLU, from the runtime's Conv step). Every path applies it to each piece
  // of output it has just finished, while that piece is in cache: a row piece of a GEMM tile, a
  // band of rows of the direct kernel or of a depthwise channel block, a depthwise plane, a
  // small-patch image. A max pool (run_max_pooled) then runs after it, staged: the function need
  // not commute with the pool. `ctx` must outlive the plan's runs.
  struct PostOp {
    void (*fn)(const void* ctx, float* values, size_t n) = nullptr;
    const void* ctx = nullptr;
    // fn over `len` values at `first`, and at each of the next planes - 1 runs `stride` apart (a
    // band of rows a path has just written to several planes); nothing when fn is null. Runs
    // that follow each other (whole planes) go to fn as one: small planes (7x7) made a call of
    // 49 values per channel, whose overhead cost more than the function.
    void apply(float* first, size_t len, size_t planes = 1, size_t stride = 0) const {
      if (fn == nullptr) return;
      if (stride == len) {
        fn(ctx, first, len * planes);
        return;
      }
      for (size_t c = 0; c < planes; ++c) fn(ctx, first + c * stride, len);
    }
  };
  void fuse_post(PostOp op);
  // Floats of scratch `run` needs for this batch size (0 for a pointwise convolution, unless its
  // plane is small enough for the pixel-rows layout: at most 196 pixels and 64 or more output
  // channels per group). It depends on the geometry and batch only. The buffer needs no
  // particular alignment or initial content.
  size_t scratch_floats(size_t batch) const;
  void run(const float* input, float* output, size_t batch, float* scratch,
           size_t max_threads = 0) const;
  // Bytes held by the packed weights and bias.
  size_t weight_bytes() const;

  // True when run_max_pooled fuses the pool with the active ISA (a direct path is on).
  bool can_fuse_max_pool() const;
  // Floats of scratch run_max_pooled needs (any ISA may be active at run time; 0 when the plan
  // has no direct path).
  size_t max_pooled_scratch_floats(size_t batch, const ConvMaxPool& pool) const;
  // output = maxpool(relu?(conv(input) + bias)) as NCHW planes of pool.out_h x pool.out_w, with the
  // convolution output never leaving cache; indices (when not null, same layout) get each winner's
  // flat offset in its convolution output plane, exactly as max_pool2d_forward would pick it.
  // Meant for when can_fuse_max_pool(); should the ISA have changed since (set_active_isa on another
  // thread) to one without a direct path, it runs the convolution and the pool as two steps
  // (through a temporary buffer of its own), with the same result.
  void run_max_pooled(const float* input, float* output, size_t batch, const ConvMaxPool& pool, float* scratch,
                      size_t max_threads = 0, int32_t* indices = nullptr) const;

  // The same on one dispatch table, which a caller running several steps reads once (internal:
  // only native/src has DispatchTable). The overloads above read the active table once per call.
  bool can_fuse_max_pool(const DispatchTable& t) const;
  // Whether run_max_pooled runs this pool inside the convolution on `t`: a window that reaches
  // past the output (padding, overhang) only on the direct kernels, which skip those taps; other
  // paths stage such a pool (the same result, through memory).
  bool can_fuse_max_pool(const DispatchTable& t, const ConvMaxPool& pool) const;
  // `residual` (null: none) is a tensor of the output's shape, batch x Cout x OH x OW, that does
  // not overlap it: output = post(clamp(relu(conv(input) + bias)) + residual), the residual added
  // to each piece of output just before the post function runs on it, while the piece is in
  // cache (a residual block's Add ahead of a SiLU, say). Internal like the table it takes.
  void run(const DispatchTable& t, const float* input, float* output, size_t batch, float* scratch,
           size_t max_threads = 0, const float* residual = nullptr) const;
  void run_max_pooled(const DispatchTable& t, const float* input, float* output, size_t batch, const ConvMaxPool& pool,
                      float* scratch, size_t max_threads = 0, int32_t* indices = nullptr) const;
  // True when the convolution runs as GEMMs over output planes on every table (no depthwise,
  // direct, small-patch, stride-phase or pixel-rows path): the ones run_accumulating serves.
  bool accumulates() const;
  // For a plan built without its own ReLU: output = post(clamp(relu?(conv(input) + bias + output))),
  // the ReLU when `relu` (which comes with no clamp or post function). The residual is in `output`
  // already and the GEMM adds its product to it as it writes each tile (a residual block's Add,
  // written over its residual: no second buffer and no pass after). Meant for when accumulates();
  // otherwise the same result through a copy of the residual and run().
  void run_accumulating(const DispatchTable& t, const float* input, float* output, size_t batch, float* scratch,
                        size_t max_threads, bool relu) const;

 private:
  Conv2dGeometry g_;
  std::vector<PackedA> packed_;  // one per group: Cout/groups x patch (empty when depthwise or pixels in rows)
  // Small planes (late layers: 7x7, 14x14) put the pixels in the GEMM's rows and the output channels
  // in its vector lanes instead: one per group, patch x Cout/groups; packed_ is then empty.
  std::vector<PackedB> packed_rows_;
  std::vector<float> weight_;    // OIHW, only when depthwise
  // Depthwise with multiplier 1: weight_ and bias_ packed for the channel-block kernels of 8 and
  // 16 lanes (the ISA may change between planning and running); empty otherwise.
  std::vector<float> blocks8_, blocks16_;
  std::vector<float> bias_;      // empty when there is no bias
  std::shared_ptr<const DirectConvWeights> direct_;  // null when the direct path does not apply
  std::shared_ptr<const SmallConvWeights> small_;    // null when the small-patch kernel does not apply
  bool relu_ = false;
  bool depthwise_ = false;
  bool small_padded_ = false;  // the small-patch kernel runs on zero-padded copies of the images
  // A stride-2 convolution over <= 4 channels runs as this stride-1 plan over the input's stride
  // phases (conv2d-plan.cc: phase_split_fits); null otherwise.
  std::shared_ptr<Conv2dPlan> phased_;
  std::shared_ptr<const PhasePlanes> stem_phases_;  // its input: each channel's stride phases
  // A stride-2 convolution unpadded (padding made real) for the strided direct kernel: the stems,
  // which it runs with no zero taps wasted, and padded stride-2 convolutions over more channels
  // (conv2d-plan.cc: padded_stride2_direct_fits). Preferred where the table has the direct
  // kernel; null when it does not fit.
  std::shared_ptr<Conv2dPlan> strided_direct_;
  bool clamp_ = false;  // fuse_clamp's bounds, after ReLU
  float clamp_lo_ = 0.0f, clamp_hi_ = 0.0f;
  PostOp post_;  // fuse_post's function, after the clamp
  // Floats of a slot's product buffer: the pixel rows (cols x Cout/groups, padded to vectors) with
  // pixels in rows, else the tiling's own (several images' columns side by side).
  size_t gather_floats(const ConvTiling& t) const;
  // The clamp as a pass over `n` outputs, where the kernel did not apply it.
  void clamp_in_place(float* data, size_t n, size_t max_threads) const;

  // `strided_inner`: strided_direct_ itself, which keeps its stride-2 geometry (no phase split) and
  // packs no GEMM weights (the outer plan runs it only where the table has the direct kernel).
  Conv2dPlan(const Conv2dGeometry& geometry, const float* weight, const float* bias, bool relu, bool strided_inner);
  // The table's kernels (the one a call read) have the path and the plan built it.
  bool direct_active(const DispatchTable& t) const;
  bool strided_direct_active(const DispatchTable& t) const;
  // Floats of one zero-padded image for strided_direct_ (0 when the convolution has no padding),
  // and the copy of `n` images into them.
  size_t strided_padded_floats() const;
  void pad_strided_images(const float* input, size_t n, float* padded) const;
  bool small_active(const DispatchTable& t) const;
  // The stride phases of `n` images for phased_ (row: stem_phases_->row_floats() floats).
  void split_phases(const DispatchTable& t, const float* input, size_t n, float* phases, float* row) const;
  // Floats of one zero-padded input image for the small-patch kernel (0 when unpadded).
  size_t small_padded_floats() const;
  // Images are tasks of parallel_for_slots over at most this many threads (one scratch slot each).
  size_t image_threads(size_t batch, size_t max_threads) const;
  // The direct paths' scratch slots for a batch, and the parts each image is cut into when there
  // are fewer images than threads (at most kDirectImageParts slots at batch 1).
  static constexpr size_t kDirectImageParts = 2;
  static size_t direct_slots(size_t batch);
  static size_t direct_parts(size_t batch, size_t threads);
  // Only when small_active(t), resp. direct_active(t), for the same table.
  // `post` is post_, or that with a residual added first (run): it runs on the output in place.
  void run_small(const DispatchTable& t, const float* input, float* output, size_t batch, const ConvMaxPool* pool,
                 float* scratch, size_t max_threads, int32_t* indices, const PostOp& post) const;
  void run_direct(const DispatchTable& t, const float* input, float* output, size_t batch, const ConvMaxPool* pool,
                  float* scratch, size_t max_threads, int32_t* indices, const PostOp& post) const;
  // One GEMM item of the pixel-rows layout (images x ncols pixel rows from column j0) on up to
  // max_threads threads: split by pixel rows (each band its im2col, product rows and transpose)
  // or, where the weights are the larger operand, by output channels (the column matrix split by
  // input channels first). Threaded inside the GEMM alone, the im2col before it and the transpose
  // after it ran on one thread, and each thread read all the weights.
  // The GEMM paths of run (run_accumulating's with `accumulate`): `post` on each piece, the ReLU
  // in the GEMM's epilogue when `relu`.
  void run_gemms(const DispatchTable& table, const float* input, float* output, size_t batch, float* scratch,
                 size_t max_threads, const float* residual, const PostOp& post, bool accumulate, bool relu) const;
  void run_rows_threaded(const DispatchTable& table, const PackedB& weights, const GemmEpilogue& epilogue,
                         const float* in, size_t images, size_t j0, size_t ncols, float* col, float* gather, float* out,
                         size_t max_threads, const PostOp* post_at_home) const;
  // Scratch of run_strided_direct for a batch (pooled by `pool` when not null); 0 without it.
  size_t strided_direct_scratch_floats(size_t batch, const ConvMaxPool* pool) const;
  // Only when strided_direct_active(t): the convolution on strided_direct_, pooled when `pool` is
  // not null (then there is no residual).
  void run_strided_direct(const DispatchTable& t, const float* input, float* output, size_t batch, const ConvMaxPool* pool,
                       float* scratch, size_t max_threads, int32_t* indices, const float* residual) const;
  // The convolution, then max_pool2d_forward over it, in chunks of images through a temporary buffer.
  void run_staged_max_pool(const DispatchTable& t, const float* input, float* output, size_t batch,
                           const ConvMaxPool& pool, size_t max_threads, int32_t* indices) const;
};

// output = conv(input, weight) + bias (nullptr: none), then ReLU when `relu`. Packs the weights and
// runs a Conv2dPlan; scratch comes from an internal pool reused across calls.
void conv2d_forward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                    const float* bias, bool relu, float* output, size_t max_threads = 0);

// output = maxpool(conv(input, weight) + bias) and, when not null, indices = each winner's flat
// offset in its convolution output plane: bit for bit conv2d_forward followed by
// max_pool2d_forward, without the full-size convolution output where the direct path runs.
void conv2d_max_pool_forward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                             const float* bias, const ConvMaxPool& pool, float* output, int32_t* indices,
                             size_t max_threads = 0);

// Gradients of conv2d_forward without ReLU (apply relu_backward to grad_output first when the
// forward was fused). Each non-null output is overwritten: grad_input (batch x Cin x H x W),
// grad_weight (OIHW, summed over the batch), grad_bias (Cout). The batch sum is taken in a fixed
// order, so it does not depend on the thread count.
void conv2d_backward(const Conv2dGeometry& g, size_t batch, const float* input, const float* weight,
                     const float* grad_output, float* grad_input, float* grad_weight,
                     float* grad_bias, size_t max_threads = 0);

}  // namespace kiln
