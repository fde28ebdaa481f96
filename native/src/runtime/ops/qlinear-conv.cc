// QLinearConv: uint8 NHWC input, int8 OIHW weights packed once (S8Conv2dPlan), int32 bias,
// requantized uint8 NHWC output with a fused ReLU (y_min = y_zero_point), or, without y_scale, a
// float32 output dequantized in the GEMM epilogue (staged NHWC in scratch, then written NCHW with
// the ReLU applied), or for a 1x1 convolution on AVX-512 VNNI straight into the NCHW planes
// (s8-conv/s8-pointwise-planes.h). An optional fused MaxPool (attrs `pool` = 'MaxPool', `pool_kernel`, ...) runs
// the convolution a few images at a time into scratch that stays in cache and pools from there.
// With attr `sparse` = 'always' | 'auto' a stride-1 ungrouped convolution with a uint8 output (and
// no pool, or a 2x2/2 max pool) whose weights are at least half zeros may run on the sparse int8
// kernels instead (kiln/s8-sparse.h: 1x4 blocks, direct, the pool fused on the int32 sums), with
// the same bits (runtime/ops/s8-sparse-choice.h).
#include <algorithm>
#include <memory>
#include <sstream>

#include "common/dispatch.h"
#include "conv/rows-to-planes.h"
#include "kiln/cpu.h"
#include "kiln/s8-conv.h"
#include "kiln/s8-sparse.h"
#include "kiln/thread-pool.h"
#include "runtime/ops/conv-attrs.h"
#include "runtime/ops/ops.h"
#include "runtime/ops/pool-u8.h"
#include "runtime/ops/quant-attrs.h"
#include "runtime/ops/s8-sparse-choice.h"
#include "runtime/ops/sparse-mode.h"
#include "runtime/parallel.h"
#include "runtime/sparse-choice.h"
#include "s8-conv/s8-pointwise-planes.h"
#include "s8-conv/s8-small-conv.h"

namespace kiln {
namespace runtime {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 31;
// Bytes of conv output a fused pool consumes per chunk and thread (as the float Conv step).
constexpr size_t kFusedChunkBytes = size_t{128} << 10;

size_t round4(size_t n) { return (n + 3) / 4 * 4; }

// Convolutions with a small patch and few output channels (SeedCNN conv1: 1 or 3 channels,
// 3x3 -> 32) leave much of an int8 GEMM tile idle (MNIST: K = 9 of 12, N = 32 of 64 columns). Two horizontally
// adjacent output pixels share a kernel_h x (kernel_w + 1) input patch, so they run as ONE
// GEMM row: a convolution with stride_w 2, a kernel one column wider and 2 * O output channels
// (the kernel placed at the patch's left for the first O, at its right for the second O, zeros
// elsewhere). Its NHWC output [OH][OW / 2][2 O] is byte for byte the original [OH][OW][O], and
// every sum has the same terms (the extra ones have zero weights): the same bits, half the rows,
// for at most 1.5 times the depth (MNIST 12 -> 12, CIFAR 28 -> 36).
struct PairedConv {
  Conv2dGeometry g;
  std::vector<int8_t> w;
  std::vector<int32_t> bias;
  std::vector<float> w_scale;
};

bool make_paired(const Conv2dGeometry& g, const int8_t* w, const int32_t* bias, const S8ConvQuant& q, PairedConv* out) {
  const size_t patch = g.in_channels * g.kernel_h * g.kernel_w;
  const size_t wider = g.in_channels * g.kernel_h * (g.kernel_w + 1);
  if (g.groups != 1 || g.stride_w != 1 || g.dilation_w != 1 || g.out_width < 2 || g.out_width % 2 != 0 ||
      g.out_channels > 32 || patch > 32 || 2 * round4(wider) > 3 * round4(patch)) {
    return false;
  }
  Conv2dGeometry p = g;
  p.out_channels = 2 * g.out_channels;
  p.kernel_w = g.kernel_w + 1;
  p.stride_w = 2;
  p.out_width = g.out_width / 2;
  if (window_output_size(p.in_width, p.pad_left, p.pad_right, p.kernel_w, p.stride_w, p.dilation_w) != p.out_width ||
      !conv2d_geometry_valid(p)) {
    return false;
  }
  const size_t o = g.out_channels, c = g.in_channels, kh = g.kernel_h, kw = g.kernel_w;
  out->w.assign(p.out_channels * c * kh * (kw + 1), 0);
  for (size_t half = 0; half < 2; ++half) {
    for (size_t oc = 0; oc < o; ++oc) {
      for (size_t ic = 0; ic < c; ++ic) {
        for (size_t i = 0; i < kh; ++i) {
          for (size_t j = 0; j < kw; ++j) {
            out->w[(((half * o + oc) * c + ic) * kh + i) * (kw + 1) + j + half] = w[((oc * c + ic) * kh + i) * kw + j];
          }
        }
      }
    }
  }
  if (bias) {
    out->bias.assign(bias, bias + o);
    out->bias.insert(out->bias.end(), bias, bias + o);
  }
  out->w_scale.assign(q.w_scale, q.w_scale + q.w_scale_count);
  if (q.w_scale_count == o) out->w_scale.insert(out->w_scale.end(), q.w_scale, q.w_scale + o);
  out->g = p;
  return true;
}

S8Conv2dPlan make_plan(const Conv2dGeometry& g, const int8_t* w, const int32_t* bias, const S8ConvQuant& q, bool float_output,
                       bool* paired) {
  PairedConv pc;
  *paired = !float_output && make_paired(g, w, bias, q, &pc);
  if (!*paired) return S8Conv2dPlan(g, w, bias, q, float_output);
  S8ConvQuant q2 = q;
  q2.w_scale = pc.w_scale.data();
  q2.w_scale_count = pc.w_scale.size();
  return S8Conv2dPlan(pc.g, pc.w.data(), bias ? pc.bias.data() : nullptr, q2, false);
}

// A fused max pool that reads fewer output rows than the convolution has (2x2/2 over SeedCNN
// conv_1's 11 rows reads 10): the same convolution over the input rows those need, computing only
// the rows read. The input keeps its image stride, so the cropped convolution runs image by image.
Conv2dGeometry crop_for_pool(const Conv2dGeometry& g, const Pool2d* pool) {
  if (pool == nullptr || g.pad_bottom != 0) return g;
  const PoolAxis& h = pool->height_axis();
  if (h.pad_begin != 0 || h.pad_end != 0 || h.out < 1) return g;
  const size_t read = static_cast<size_t>((h.out - 1) * h.stride + (h.kernel - 1) * h.dilation + 1);
  if (read >= g.out_height) return g;
  const size_t span = (read - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1;
  if (span <= g.pad_top) return g;
  Conv2dGeometry c = g;
  c.in_height = span - g.pad_top;
  c.out_height = read;
  if (c.in_height > g.in_height || window_output_size(c.in_height, c.pad_top, 0, c.kernel_h, c.stride_h, c.dilation_h) != read ||
      !conv2d_geometry_valid(c)) {
    return g;
  }
  return c;
}

Pool2d crop_pool(const Pool2d& pool, size_t rows) {
  PoolAxis h = pool.height_axis();
  h.in = static_cast<int64_t>(rows);
  return Pool2d(true, false, h, pool.width_axis());
}

class QLinearConvStep : public PlanStep {
 public:
  QLinearConvStep(const Conv2dGeometry& g, const int8_t* w, const int32_t* bias, const S8ConvQuant& q,
                  bool float_output, bool relu, const Pool2d* pool, SparseMode sparse_mode)
      : conv_(make_plan(crop_for_pool(g, pool), w, bias, q, float_output, &paired_)), logical_(g), relu_(relu),
        fused_pool_(pool != nullptr) {
    if (pool) {
      cropped_ = conv_.geometry().out_height != g.out_height;
      pool_ = PoolU8(cropped_ ? crop_pool(*pool, conv_.geometry().out_height) : *pool, g.out_channels);
      pool_detail_ = pool->detail();
      const PoolAxis& ph = pool->height_axis();
      const PoolAxis& pw = pool->width_axis();
      const bool window = ph.kernel == 2 && ph.stride == 2 && ph.pad_begin == 0 && ph.pad_end == 0 && ph.dilation == 1 &&
                          pw.kernel == 2 && pw.stride == 2 && pw.pad_begin == 0 && pw.pad_end == 0 && pw.dilation == 1;
      if (window && !float_output && ph.out > 0 && pw.out > 0 &&
          S8SmallConvPool::fits(g, static_cast<size_t>(ph.out), static_cast<size_t>(pw.out), q)) {
        small_ = std::make_unique<S8SmallConvPool>(g, w, bias, q);
      }
    }
    if (float_output && pool == nullptr && s8_planes_supported(g)) {
      planes_ = std::make_unique<const S8PointwisePlanes>(g, w, bias, q, relu);
    }
    if (sparse_mode != SparseMode::kNever) choose_sparse(g, w, bias, q, float_output, pool, sparse_mode);
  }

  void run(const StepBuffers& io, size_t batch, float* scratch, size_t threads) const override {
    run_with(io, batch, scratch, threads, sparse_ != nullptr);
  }

 private:
  // Packs the weights into 1x4 blocks when they are sparse enough and the step fits the sparse
  // kernel, then keeps them ('always') or the faster path on synthetic images ('auto').
  void choose_sparse(const Conv2dGeometry& g, const int8_t* w, const int32_t* bias, const S8ConvQuant& q,
                     bool float_output, const Pool2d* pool, SparseMode mode) {
    if (float_output) return;  // the float-output variant stays dense
    bool pool2x2 = false;
    if (pool) {
      const PoolAxis& ph = pool->height_axis();
      const PoolAxis& pw = pool->width_axis();
      const bool window = ph.kernel == 2 && ph.stride == 2 && ph.pad_begin == 0 && ph.pad_end == 0 && ph.dilation == 1 &&
                          pw.kernel == 2 && pw.stride == 2 && pw.pad_begin == 0 && pw.pad_end == 0 && pw.dilation == 1;
      if (!window || ph.out != static_cast<int64_t>(g.out_height / 2) || pw.out != static_cast<int64_t>(g.out_width / 2)) return;
      pool2x2 = true;
    }
    if (!S8SparseConv::fits(g, q, pool2x2)) return;
    zero_fraction_ = s8_sparse_choice::zero_fraction(w, g.weight_size());
    if (zero_fraction_ < s8_sparse_choice::kFloor) return;
    considered_ = true;
    sparse_ = std::make_unique<const S8SparseConv>(g, w, bias, q, pool2x2);
    if (mode == SparseMode::kAuto) {
      // Remembered per process (runtime/sparse-choice.h), keyed by what the timing depends on.
      uint64_t hash = hash_bytes(w, g.weight_size());
      if (bias) hash = hash_bytes(bias, g.out_channels * sizeof(int32_t), hash);
      std::ostringstream key;
      key << "QLinearConv " << g.in_channels << "x" << g.in_height << "x" << g.in_width << "->" << g.out_channels << " k"
          << g.kernel_h << "x" << g.kernel_w << " p" << g.pad_top << "," << g.pad_left << "," << g.pad_bottom << ","
          << g.pad_right << " d" << g.dilation_h << "x" << g.dilation_w << " pool " << pool2x2 << " isa "
          << isa_name(dispatch().isa) << " w " << hash;
      if (!cached_sparse_choice(key.str(), [this] { return probe(); })) sparse_.reset();
    }
  }

  // Both paths on kProbeImages synthetic images, one thread: true when the sparse one is faster.
  bool probe() const {
    constexpr size_t kProbeImages = 4;
    const Conv2dGeometry& g = logical_;
    const size_t out_image = g.out_channels * sparse_->pooled_height() * sparse_->pooled_width();
    std::vector<uint8_t> x(kProbeImages * g.in_channels * g.in_plane()), y(kProbeImages * out_image);
    fill_probe(x.data(), x.size());
    std::vector<float> scratch(scratch_floats(kProbeImages, 1) + 16);
    const float* in[1] = {reinterpret_cast<const float*>(x.data())};
    float* out[1] = {reinterpret_cast<float*>(y.data())};
    const StepBuffers io{in, out};
    return sparse_is_faster([&] { run_with(io, kProbeImages, scratch.data(), 1, false); },
                                              [&] { run_with(io, kProbeImages, scratch.data(), 1, true); });
  }

  void run_with(const StepBuffers& io, size_t batch, float* scratch, size_t threads, bool sparse) const {
    const auto* in = reinterpret_cast<const uint8_t*>(io.in[0]);
    // One table for the whole step (setIsa() may switch the active one on another thread). The
    // small kernel exists on AVX-512 VNNI only; run() says so when `t` lacks it: then the GEMM path.
    const DispatchTable& t = dispatch();
    if (sparse) {
      sparse_->run(t, in, reinterpret_cast<uint8_t*>(io.out[0]), batch, reinterpret_cast<uint8_t*>(scratch), threads);
      return;
    }
    if (fused_pool_ && small_ && small_->run(t, in, reinterpret_cast<uint8_t*>(io.out[0]), batch, threads)) {
      return;
    }
    if (fused_pool_) {
      auto* out = reinterpret_cast<uint8_t*>(io.out[0]);
      const size_t workers = pool_workers(batch, threads);
      if (workers == 1) {
        conv_pool(t, in, out, batch, chunk_images(batch, threads), scratch, threads);
        return;
      }
      // Each worker convolves and pools its own share of the images, a cache-sized chunk at a
      // time in its own scratch slot: one fork per step, no synchronisation per chunk.
      const size_t in_image = logical_.in_channels * logical_.in_plane(), chunk = chunk_images(batch, 1);
      const size_t slot = pool_slot_floats(chunk);
      parallel_for(
          workers,
          [&](size_t w) {
            const size_t b0 = batch * w / workers, b1 = batch * (w + 1) / workers;
            conv_pool(t, in + b0 * in_image, out + b0 * pool_.out_image(), b1 - b0, chunk, scratch + w * slot, 1);
          },
          workers);
      return;
    }
    if (!conv_.float_output()) {
      conv_.run(t, in, io.out[0], batch, reinterpret_cast<uint8_t*>(scratch), threads);
      return;
    }
    const Conv2dGeometry& g = conv_.geometry();
    if (planes_ && t.s8_conv.planes_run != nullptr) {
      planes_->run(t.s8_conv.planes_run, in, io.out[0], batch, g.out_plane(), threads);
      return;
    }
    const size_t plane = g.out_plane(), channels = g.out_channels, image = plane * channels;
    float* staged = scratch;
    conv_.run(t, in, staged, batch, reinterpret_cast<uint8_t*>(scratch + round16(batch * image)), threads);
    // NHWC -> NCHW in tiles of kTilePixels pixels: each channel's run of the tile is written
    // contiguously and the tile's reads stay in L1 (a pixel-by-pixel walk wrote to every one of
    // the channel planes per pixel: 96 planes of 112x112 took 4 ms).
    constexpr size_t kTilePixels = 64;
    const size_t tiles = (plane + kTilePixels - 1) / kTilePixels;
    for_chunks(batch * tiles, 1, threads, [&](size_t t0, size_t t1) {
      for (size_t t = t0; t < t1; ++t) {
        const size_t b = t / tiles, p0 = (t % tiles) * kTilePixels, n = std::min(kTilePixels, plane - p0);
        f32_rows_to_planes(staged + b * image + p0 * channels, n, channels, channels, relu_, io.out[0] + b * image + p0,
                           plane);
      }
    });
  }
  size_t dense_scratch_floats(size_t batch, size_t threads) const {
    if (fused_pool_) {
      const size_t workers = pool_workers(batch, threads);
      if (workers == 1) return pool_slot_floats(chunk_images(batch, threads), threads);
      return workers * pool_slot_floats(chunk_images(batch, 1));
    }
    const size_t conv = round_up_floats(conv_.scratch_bytes(batch, threads));
    if (!conv_.float_output()) return conv;
    const Conv2dGeometry& g = conv_.geometry();
    return round16(batch * g.out_channels * g.out_plane()) + conv;
  }

 public:
  size_t scratch_floats(size_t batch, size_t threads) const override {
    const size_t dense = dense_scratch_floats(batch, threads);
    return sparse_ ? std::max(dense, round_up_floats(sparse_->scratch_bytes(batch, threads))) : dense;
  }
  size_t weight_bytes() const override {
    return conv_.weight_bytes() + (sparse_ ? sparse_->weight_bytes() : 0) + (planes_ ? planes_->weight_bytes() : 0);
  }
  std::string detail() const override {
    const Conv2dGeometry& g = logical_;
    std::ostringstream s;
    s << "u8 NHWC " << g.kernel_h << "x" << g.kernel_w << " s" << g.stride_h << "x" << g.stride_w << " "
      << g.in_channels << "->" << g.out_channels;
    if (g.groups > 1) s << " g" << g.groups;
    if (g.dilation_h > 1 || g.dilation_w > 1) s << " d" << g.dilation_h << "x" << g.dilation_w;
    if (relu_) s << " relu";
    s << (conv_.float_output() ? " -> f32 NCHW" : " -> u8");
    if (paired_) s << " (2 pixels per GEMM row)";
    if (fused_pool_) s << " + max pool " << pool_detail_;
    // Built once, read while the ISA may change (setIsa): say which path runs where.
    if (planes_) s << " (direct into the planes on avx512vnni; the GEMM and a transpose on other ISAs)";
    if (small_ && !sparse_) s << " (direct on avx512vnni, pooled before requantizing; the GEMM on other ISAs)";
    if (!small_ && !sparse_ && conv_.grouped_direct()) s << " (grouped kernel on VNNI, a GEMM per group elsewhere)";
    if (!small_ && !sparse_ && conv_.reads_input_in_place()) s << " (no im2col on VNNI and scalar, im2col on AVX2 / AVX-512BW)";
    if (considered_) {
      const int pct = s8_sparse_choice::percent(zero_fraction_);
      if (sparse_) {
        s << " sparse s8 1x4 " << pct << "% (" << sparse_->packed().blocks() << " of "
          << sparse_->packed().rows() * sparse_->packed().groups() << " blocks)";
      } else {
        s << " dense, " << pct << "% zeros";
      }
    }
    return s.str();
  }

 private:
  static size_t round16(size_t n) { return (n + 15) / 16 * 16; }
  // Images in parallel for a fused pool: one worker per thread, each with an image or more.
  static size_t pool_workers(size_t batch, size_t threads) { return std::max<size_t>(1, std::min(batch, threads)); }
  // Scratch of one conv + pool pass over `chunk` images: the staged conv output, then the conv's own.
  size_t pool_slot_floats(size_t chunk, size_t threads = 1) const {
    const Conv2dGeometry& g = conv_.geometry();
    return round16(round16(round_up_floats(chunk * g.out_channels * g.out_plane())) + round_up_floats(conv_.scratch_bytes(chunk, threads)));
  }
  void conv_pool(const DispatchTable& t, const uint8_t* in, uint8_t* out, size_t batch, size_t chunk, float* scratch,
                 size_t threads) const {
    const Conv2dGeometry& g = conv_.geometry();
    const size_t in_image = logical_.in_channels * logical_.in_plane(), conv_image = g.out_channels * g.out_plane();
    auto* staged = reinterpret_cast<uint8_t*>(scratch);
    auto* conv_scratch = reinterpret_cast<uint8_t*>(scratch + round16(round_up_floats(chunk * conv_image)));
    for (size_t start = 0; start < batch; start += chunk) {
      const size_t n = std::min(chunk, batch - start);
      if (cropped_) {
        for (size_t b = 0; b < n; ++b) conv_.run(t, in + (start + b) * in_image, staged + b * conv_image, 1, conv_scratch, threads);
      } else {
        conv_.run(t, in + start * in_image, staged, n, conv_scratch, threads);
      }
      pool_.run(staged, out + start * pool_.out_image(), n, threads);
    }
  }
  // Images per chunk: a cache-sized share for every thread the run may use.
  size_t chunk_images(size_t batch, size_t threads) const {
    const Conv2dGeometry& g = conv_.geometry();
    const size_t bytes = std::max<size_t>(1, g.out_channels * g.out_plane());
    const size_t per_thread = std::max<size_t>(1, kFusedChunkBytes / bytes);
    return std::max<size_t>(1, std::min(batch, per_thread * std::max<size_t>(threads, 1)));
  }
  bool paired_ = false;  // set by make_plan before conv_ is built (declared first)
  S8Conv2dPlan conv_;
  Conv2dGeometry logical_;
  bool relu_;
  bool fused_pool_;
  bool cropped_ = false;  // conv_ computes only the output rows the fused pool reads
  PoolU8 pool_;
  std::string pool_detail_;
  std::unique_ptr<S8SmallConvPool> small_;  // small patch + 2x2/2 pool on AVX-512 VNNI
  std::unique_ptr<const S8PointwisePlanes> planes_;  // 1x1 into float planes on AVX-512 VNNI
  std::unique_ptr<const S8SparseConv> sparse_;  // set: the step runs sparse (every ISA)
  bool considered_ = false;                     // sparse enough to be packed (and timed, 'auto')
  double zero_fraction_ = 0;
};

}  // namespace

std::unique_ptr<PlanStep> make_qlinear_conv(const StepContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_outputs(1);
  ctx.expect_input_rank(0, 3);
  ctx.expect_input_dtype(0, PlanDType::kUint8);
  const bool float_output = !ctx.has("y_scale");
  ctx.expect_output_dtype(0, float_output ? PlanDType::kFloat32 : PlanDType::kUint8);
  const PlanShape& x = ctx.in()[0];
  const int64_t out_channels = ctx.integer("out_channels", 1, kMaxDim);
  Conv2dGeometry g = conv_geometry_from_attrs(ctx, x, static_cast<size_t>(out_channels), {});
  const PlanTensor& w = ctx.typed_weight("W", PlanDType::kInt8, {g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w});
  const PlanTensor* b = ctx.typed_weight_opt("B", PlanDType::kInt32, {g.out_channels});
  const PlanTensor* ws = &weight_scales(ctx, g.out_channels);
  complete_conv_geometry(ctx, x, g);
  const std::string pool_op = ctx.choice_or("pool", {"None", "MaxPool"}, "None");
  const bool float_output_pool = pool_op != "None" && float_output;
  if (float_output_pool) ctx.fail("attrs.pool", "no fused pool on a float output", "'MaxPool'");
  Pool2d pool;
  if (pool_op == "None") {
    ctx.expect_output_shape(0, {g.out_channels, g.out_height, g.out_width});
  } else {
    pool = Pool2d::parse(ctx, "pool_", {g.out_channels, g.out_height, g.out_width}, true);
    ctx.expect_output_shape(0, pool.output_shape(g.out_channels, 2));
  }

  S8ConvQuant q;
  q.x_scale = scale_attr(ctx, "x_scale");
  q.x_zero_point = zero_point_attr(ctx, "x_zero_point");
  q.w_scale = ws->data;
  q.w_scale_count = ws->length;
  const bool relu = ctx.integer_or("relu", 0, 1, 0) == 1;
  const SparseMode sparse_mode = parse_sparse_mode(ctx);
  if (!float_output) {
    q.y_scale = scale_attr(ctx, "y_scale");
    q.y_zero_point = zero_point_attr(ctx, "y_zero_point");
    q.y_min = relu ? q.y_zero_point : 0;
    q.y_max = 255;
  }
  return std::make_unique<QLinearConvStep>(g, static_cast<const int8_t*>(w.raw), b ? static_cast<const int32_t*>(b->raw) : nullptr, q,
                                           float_output, relu, pool_op == "None" ? nullptr : &pool, sparse_mode);
}

}  // namespace runtime
}  // namespace kiln
