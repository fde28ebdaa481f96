// Conv: NCHW 2-D convolution on the prepacked Conv2dPlan (groups, dilation, strides, asymmetric
// pads), bias and the fused activation. Relu runs inside the kernel; other activations on the
// output right after. An optional fused pool (attrs `pool` = 'MaxPool' | 'AveragePool' and
// `pool_kernel`, `pool_strides`, ...) runs the convolution a few images at a time into scratch
// that stays in cache and pools from there: the full-size conv output never goes to memory.
// With attr `winograd` = 1 (graphOptimizationLevel 'all') a 3x3 stride-1 convolution that
// winograd_fits runs as Winograd F(2x2, 3x3) or F(4x4, 3x3) on AVX-512 (conv/winograd.h), 2x2/2
// max pools inside.
// With attr `sparse` = 'always' | 'auto' (session option sparseKernels; absent = 'never') an
// ungrouped convolution whose weights are at least kSparseFloor zeros may run on the sparse kernels
// instead. Stride-1 convolutions other than pointwise run the direct sparse convolution
// (kiln/sparse-conv.h: no im2col, bias and ReLU inside, and a fused max pool after ReLU or nothing
// inside too); the others (strided, pointwise) per image im2col (none for pointwise), then
// Y = W_sparse * cols (kiln/sparse.h). Other activations and pools run after either as on the
// staged dense path. 'always' takes sparse whenever the floor is met; 'auto' times both (dense
// with its Winograd or direct fused-pool kernels where it has them) on a few synthetic images
// when the plan is built and keeps the faster. On the im2col + SpMM path, weights whose zeros are
// exactly N:M over input channels at each kernel position (the pruner's 2:4, 1:4, 4:8;
// kiln/sparse-nm.h) and not whole blocks are packed N:M. The direct sparse convolution has no N:M
// form, and keeps CSR for them: native/bench/sparse-bench.cc (MNIST conv2, AVX-512, one thread)
// measured im2col + N:M SpMM 2.1x (2:4) and 2.5x (1:4) slower than the direct CSR kernel on the
// same weights, the im2col and the plain SpMM's lower arithmetic intensity costing more than the
// metadata saves. detail() says which ran ("sparse unstructured 90%", "sparse 2:4 50%" or "dense,
// 90% zeros"; the geometry alone tells the direct kernel from im2col + SpMM).
// With attr `residual` = 1 (a residual block's Add, fused by compile.ts) the step has a second
// input of the output's shape, added after the bias and before the activation, which then runs
// after the sum. Where the convolution runs as GEMMs only (pointwise and im2col convolutions on
// larger planes), or as Winograd over such planes, the plan may give the output the residual's
// storage when nothing reads the residual after (ResNet's blocks): the GEMMs then add their product
// to it as they write each tile, with the activation in their epilogue, and Winograd adds its
// outputs as they move home, the ReLU after. Otherwise one pass after the convolution adds it with the
// activation (activate), or, where a fused post function (SiLU, HardSwish) must follow the sum,
// Conv2dPlan adds it to each piece of output while that piece is in cache.
#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include "common/dispatch.h"
#include "conv/depthwise.h"
#include "conv/winograd.h"
#include "conv/im2col.h"
#include "kiln/conv.h"
#include "kiln/cpu.h"
#include "kiln/sparse-conv.h"
#include "kiln/sparse-nm.h"
#include "kiln/sparse.h"
#include "kiln/thread-pool.h"
#include "runtime/activation.h"
#include "runtime/ops/conv-attrs.h"
#include "runtime/ops/pool2d.h"
#include "runtime/ops/sparse-mode.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"
#include "runtime/sparse-choice.h"

namespace kiln {
namespace runtime {
namespace {

// Bytes of conv output a fused pool consumes per chunk. Measured on SeedCNN MNIST at batch 64
// (Zen 5, single thread, alternating A/B runs): 32-256 KiB chunks make conv+relu+pool 5-10%
// faster than separate steps; 512 KiB and more are no better or slower.
constexpr size_t kFusedChunkBytes = size_t{128} << 10;

size_t round16(size_t n) { return (n + 15) / 16 * 16; }

// ConvStep's winograd_tile: off, chosen by cost, or else the tile side (2 or 4).
constexpr size_t kNoWinograd = 0;
constexpr size_t kWinogradByCost = 1;

// Sparse kernels are considered only from this fraction of zero weights up (below it no packing,
// no timing). native/bench/sparse-bench.cc on SeedCNN's conv2 (Zen 5, one thread, pool fused):
// unstructured zeros break even with the dense direct kernel near 65%, and with Winograd near
// 82% (MNIST) / 89% (CIFAR); 4x1 / 8x1 blocks beat the direct kernel from 30% (1.0-1.1x) and
// Winograd from about 55% (MNIST) / 75% (CIFAR). A floor of 0.3 for whole-block zeros would let
// plans without Winograd gain 3-50% at 30-50% zeros, but the documented contract (README, session
// options, docs/architecture.md) is "at least half zeros", so it stays at 0.5 for now.
constexpr double kSparseFloor = 0.5;
// 'auto': synthetic images per timed run (the time budget per layer: runtime/sparse-choice.h).
constexpr size_t kSparseProbeImages = 4;
// Layers of more multiply-adds per image than this / kSparseProbeImages are probed on one image.
constexpr size_t kSparseProbeMaxMacs = size_t{32} << 20;

// Output rows stored in block-rows (all rows of a block-row of a 4x1 / 8x1 matrix but the padding).
size_t stored_in_range(const PackedSparseF32& p) {
  size_t n = 0;
  for (size_t r = 0; r < p.block_rows(); ++r) {
    const size_t rows = std::min(p.br(), p.rows() - r * p.br());
    n += (p.row_ptr()[r + 1] - p.row_ptr()[r]) * rows * p.bc();
  }
  return n;
}

// The widest block pattern whose blocks hold no zero of W (the zeros come in whole blocks), else
// unstructured CSR.
SparsePattern pack_best_pattern(size_t m, size_t k, const float* w) {
  for (SparsePattern p : {SparsePattern::kBlock8x1, SparsePattern::kBlock4x1, SparsePattern::kBlock1x4}) {
    if (p == SparsePattern::kBlock1x4 && k % 4 != 0) continue;
    const PackedSparseF32 packed(m, k, w, k, p);
    if (packed.nonzeros() > 0 && stored_in_range(packed) == packed.nonzeros()) return p;
  }
  return SparsePattern::kUnstructured;
}

// The same choice for the direct sparse convolution, whose blocks run along output channels only
// (1x4 gains nothing there): 8x1 or 4x1 when every block of W is all zero or all non-zero.
SparsePattern direct_pattern(size_t m, size_t k, const float* w) {
  for (size_t br : {size_t{8}, size_t{4}}) {
    bool whole = true, any = false;
    for (size_t r0 = 0; r0 < m && whole; r0 += br) {
      const size_t rows = std::min(br, m - r0);
      for (size_t c = 0; c < k && whole; ++c) {
        size_t nz = 0;
        for (size_t r = r0; r < r0 + rows; ++r) nz += w[r * k + c] != 0.0f ? 1 : 0;
        whole = nz == 0 || nz == br;  // a short last block-row counts as partly zero
        any |= nz > 0;
      }
    }
    if (whole && any) return br == 8 ? SparsePattern::kBlock8x1 : SparsePattern::kBlock4x1;
  }
  return SparsePattern::kUnstructured;
}

class ConvStep : public PlanStep {
 public:
  ConvStep(const Conv2dGeometry& g, const float* weight, const float* bias, Activation act, const Pool2d* pool,
           size_t winograd_tile, SparseMode sparse_mode, bool residual)
      : conv_(g, weight, bias, act.is_relu() && !residual), act_(act), residual_(residual), fused_pool_(pool != nullptr) {
    // Clip / Relu6 go into the convolution's kernels (the depthwise kernel, the GEMM epilogue),
    // unless the activation follows a residual: then every activation is the post function.
    clamp_fused_ = !residual_ && act_.kind == Activation::kClip && conv_.fuse_clamp(act_.lo, act_.hi);
    // SiLU and HardSwish run on each piece of the output while it is in cache: the separate pass
    // over memory they replace took a third of EfficientNet-B0 at batch 16. After a residual any
    // activation does, but a ReLU, which activate() applies in the residual's own loop.
    if (act_.is_post_function() || (residual_ && act_.kind != Activation::kNone && !act_.is_relu())) {
      conv_.fuse_post({[](const void* act, float* values, size_t n) { static_cast<const Activation*>(act)->apply(values, n); },
                       &act_});
      post_fused_ = true;
    }
    if (pool) pool_ = *pool;
    // 2-D max pools after ReLU (or nothing) can run inside the direct convolution.
    direct_pool_ = fused_pool_ && (act_.kind == Activation::kNone || act_.is_relu()) &&
                   pool_.as_conv_max_pool(&direct_window_);
    if (winograd_tile != kNoWinograd && winograd_fits(g)) {
      // By cost, some layers wait for a batch large enough (their weights transformed either way).
      winograd_min_batch_ = winograd_tile == kWinogradByCost ? winograd_min_batch(g) : 1;
      winograd_pool_ = direct_pool_ && winograd_pool_fits(g, direct_window_);
      const size_t tile = winograd_tile != kWinogradByCost ? winograd_tile
                                                           : winograd_tile_for(g, winograd_pool_ ? &direct_window_ : nullptr);
      winograd_ = std::make_unique<const WinogradConv>(g, weight, bias, tile);
    }
    if (sparse_mode != SparseMode::kNever) choose_sparse(g, weight, bias, sparse_mode);
    // Winograd sums onto the residual too (its outputs are added as they move home), but runs no
    // post function.
    accumulates_ = residual_ && !fused_pool_ && (!winograd_ || !post_fused_) && !sparse_ && !sparse_nm_ &&
                   !sparse_direct_ && conv_.accumulates();
  }

  // The output may take the residual's storage where the convolution runs as GEMMs (they add their
  // product to it as they write each tile: Conv2dPlan::run_accumulating) or as Winograd (its
  // outputs are added as they move home), on every table and batch.
  int in_place_input() const override { return accumulates_ ? 1 : -1; }

  void run(const StepBuffers& io, size_t batch, float* scratch, size_t max_threads) const override {
    run_with(io, batch, scratch, max_threads, sparse_on());
  }

 private:
  // Packs the weights when they are sparse enough and the geometry allows it, then keeps the sparse
  // variant ('always') or the faster of the two on a synthetic batch ('auto').
  void choose_sparse(const Conv2dGeometry& g, const float* weight, const float* bias, SparseMode mode) {
    if (g.groups != 1 || g.weight_size() == 0 || g.out_plane() == 0) return;
    const size_t total = g.weight_size();
    size_t zeros = 0;
    for (size_t i = 0; i < total; ++i) zeros += weight[i] == 0.0f ? 1 : 0;
    zero_fraction_ = static_cast<double>(zeros) / static_cast<double>(total);
    if (zero_fraction_ < kSparseFloor) return;
    considered_ = true;
    // Order on the im2col path: whole blocks (4x1 / 8x1 / 1x4: one X load or one index per
    // several weights), then N:M (2-3 bits of index per weight), then unstructured CSR. The direct
    // kernel: blocks, else CSR (see the file comment for why not N:M).
    const bool direct = SparseConvF32::supports(g) && !g.is_pointwise();
    const SparsePattern blocks = direct ? direct_pattern(g.out_channels, g.patch(), weight)
                                        : pack_best_pattern(g.out_channels, g.patch(), weight);
    const NmPattern nm = !direct && blocks == SparsePattern::kUnstructured
                             ? nm_pattern_of(weight, g.out_channels, g.patch(), g.kernel_h * g.kernel_w)
                             : NmPattern{};
    if (nm.n > 0) {
      sparse_nm_ = std::make_unique<const PackedNmF32>(g.out_channels, g.patch(), g.kernel_h * g.kernel_w, weight,
                                                       g.patch(), nm.n, nm.m);
      if (bias) sparse_bias_.assign(bias, bias + g.out_channels);
    } else if (direct) {
      sparse_direct_ = std::make_unique<const SparseConvF32>(g, weight, bias, kernel_relu(), blocks);
      sparse_pool_ = direct_pool_ && direct_window_.interior(g.out_height, g.out_width);  // its kernels take no padding
    } else {
      sparse_ = std::make_unique<const PackedSparseF32>(g.out_channels, g.patch(), weight, g.patch(), blocks);
      if (bias) sparse_bias_.assign(bias, bias + g.out_channels);
    }
    if (mode == SparseMode::kAuto && !cached_sparse_choice(choice_key(g, weight, bias), [this] { return sparse_is_faster(); })) {
      sparse_.reset();
      sparse_nm_.reset();
      sparse_direct_.reset();
      sparse_bias_.clear();
      sparse_pool_ = false;
      return;
    }
    // The dense fused-pool kernels and Winograd are no longer used.
    direct_pool_ = false;
    winograd_pool_ = false;
    winograd_.reset();
  }

  // What sparse_is_faster's answer depends on (sparse-choice.h): the geometry, the epilogue, the
  // dense variants available, the ISA table and the weights.
  std::string choice_key(const Conv2dGeometry& g, const float* weight, const float* bias) const {
    uint64_t hash = hash_bytes(weight, g.weight_size() * sizeof(float));
    if (bias) hash = hash_bytes(bias, g.out_channels * sizeof(float), hash);
    std::ostringstream s;
    s << "Conv " << g.in_channels << "x" << g.in_height << "x" << g.in_width << "->" << g.out_channels << " k"
      << g.kernel_h << "x" << g.kernel_w << " s" << g.stride_h << "x" << g.stride_w << " p" << g.pad_top << ","
      << g.pad_left << "," << g.pad_bottom << "," << g.pad_right << " d" << g.dilation_h << "x" << g.dilation_w
      << " act " << static_cast<int>(act_.kind) << " residual " << residual_ << " pool " << (fused_pool_ ? pool_.detail() : "none") << " wino "
      << (winograd_ ? 1 : 0) << winograd_pool_ << " isa " << isa_name(dispatch().isa) << " w " << hash;
    return s.str();
  }

  // Times run_with dense and sparse (runtime/sparse-choice.h) on kSparseProbeImages synthetic
  // images, one for a large layer, one thread.
  bool sparse_is_faster() {
    const Conv2dGeometry& g = conv_.geometry();
    // A few images for small layers; one for large ones (the probe must stay short).
    const size_t macs = g.out_channels * g.out_plane() * g.patch();
    const size_t images = macs * kSparseProbeImages <= kSparseProbeMaxMacs ? kSparseProbeImages : 1;
    std::vector<float> x(images * g.in_channels * g.in_plane());
    fill_probe(x.data(), x.size());
    const size_t out_image = g.out_channels * (fused_pool_ ? pool_.out_plane() : g.out_plane());
    std::vector<float> y(images * out_image);
    std::vector<float> r(residual_ ? y.size() : 0);
    fill_probe(r.data(), r.size());
    std::vector<float> scratch(scratch_floats(images, 1) + 16);
    const float* in[2] = {x.data(), r.data()};
    float* out[1] = {y.data()};
    const StepBuffers io{in, out};
    return runtime::sparse_is_faster([&] { run_with(io, images, scratch.data(), 1, false); },
                                     [&] { run_with(io, images, scratch.data(), 1, true); });
  }

  void run_with(const StepBuffers& io, size_t batch, float* scratch, size_t max_threads, bool sparse) const {
    // One table for the whole step: setIsa() may switch the active one on another thread while
    // this runs, and every path below is chosen and run on the same table (a kernel this one
    // lacks is never called; the paths that need none are always there).
    const DispatchTable& t = dispatch();
    if (sparse && sparse_pool_) {
      sparse_direct_->run(t.f32_sparse_conv, io.in[0], io.out[0], batch, &direct_window_, scratch, max_threads);
      return;
    }
    const bool winograd = !sparse && runs_winograd(t, batch);
    if (winograd && winograd_pool_ &&
        winograd_->run(t, io.in[0], io.out[0], batch, &direct_window_, act_.is_relu(), scratch, max_threads)) {
      return;
    }
    if (!sparse && direct_pool_ && conv_.can_fuse_max_pool(t, direct_window_) && !winograd) {
      conv_.run_max_pooled(t, io.in[0], io.out[0], batch, direct_window_, scratch, max_threads);
      return;
    }
    if (!fused_pool_) {
      const float* residual = residual_ ? io.in[1] : nullptr;
      // The plan gave the output the residual's storage (in_place_input): the GEMMs sum onto it.
      if (residual != nullptr && residual == io.out[0]) {
        // (accumulates_ left Winograd out where a post function follows.)
        if (!(runs_winograd(t, batch) &&
              winograd_->run(t, io.in[0], io.out[0], batch, nullptr, act_.is_relu(), scratch, max_threads, true))) {
          conv_.run_accumulating(t, io.in[0], io.out[0], batch, scratch, max_threads, act_.is_relu());
        }
        return;
      }
      // The residual goes into the convolution's pieces only where a fused post function (an
      // activation other than ReLU) must follow the sum; otherwise one pass after the
      // convolution adds it, with the ReLU (activate), the work the Add step did. On this VM the
      // per-piece adds never paid in whole models: RegNetY-400MF's 1x1 convolutions on 7x7-56x56,
      // batch 1, 2.22-2.29 ms against 2.16 ms with the Add step; ResNet-50's 64->256 on 56x56
      // (3.2 MB of output, past the L2) 1.13 against 1.11 ms, though alone, with its residual
      // read from memory, 0.85 against 0.95 ms.
      const bool in_pieces = post_fused_;
      if (!convolve(t, io.in[0], io.out[0], batch, scratch, max_threads, sparse, in_pieces ? residual : nullptr)) {
        activate(io.out[0], residual, batch, max_threads);
      }
      return;
    }
    const Conv2dGeometry& g = conv_.geometry();
    const size_t in_image = g.in_channels * g.in_plane(), conv_image = g.out_channels * g.out_plane();
    const size_t pool_image = g.out_channels * pool_.out_plane();
    const size_t chunk = chunk_images(batch, max_threads);
    float* conv_out = scratch;
    float* conv_scratch = scratch + round16(chunk * conv_image);
    for (size_t start = 0; start < batch; start += chunk) {
      const size_t n = std::min(chunk, batch - start);
      if (!convolve(t, io.in[0] + start * in_image, conv_out, n, conv_scratch, max_threads, sparse, nullptr)) {
        activate(conv_out, nullptr, n, max_threads);
      }
      pool_.run(conv_out, io.out[0] + start * pool_image, n * g.out_channels, max_threads);
    }
  }

 public:
  size_t scratch_floats(size_t batch, size_t threads) const override {
    if (!fused_pool_) return convolve_scratch_floats(batch, threads);
    const Conv2dGeometry& g = conv_.geometry();
    const size_t chunk = chunk_images(batch, threads);
    const size_t staged = round16(chunk * g.out_channels * g.out_plane()) + convolve_scratch_floats(chunk, threads);
    // The ISA may change between planning and running: room for every path.
    size_t fused = direct_pool_ ? conv_.max_pooled_scratch_floats(batch, direct_window_) : 0;
    if (winograd_pool_) fused = std::max(fused, winograd_->scratch_floats(batch, threads, &direct_window_));
    if (sparse_pool_) fused = std::max(fused, sparse_direct_->scratch_floats(batch, threads, &direct_window_));
    return std::max(staged, fused);
  }
  size_t weight_bytes() const override {
    return conv_.weight_bytes() + (winograd_ ? winograd_->bytes() : 0) +
           (sparse_ ? sparse_->bytes() + sparse_bias_.size() * sizeof(float) : 0) +
           (sparse_nm_ ? sparse_nm_->bytes() + sparse_bias_.size() * sizeof(float) : 0) +
           (sparse_direct_ ? sparse_direct_->bytes() : 0);
  }
  std::string detail() const override {
    const Conv2dGeometry& g = conv_.geometry();
    std::ostringstream s;
    s << g.kernel_h << "x" << g.kernel_w << " s" << g.stride_h << "x" << g.stride_w << " "
      << g.in_channels << "->" << g.out_channels;
    if (g.groups > 1) s << " g" << g.groups;
    if (g.dilation_h > 1 || g.dilation_w > 1) s << " d" << g.dilation_h << "x" << g.dilation_w;
    if (residual_) s << " + residual";
    if (act_.kind != Activation::kNone) s << " " << act_.name();
    if (fused_pool_) s << " + pool " << pool_.detail();
    if (winograd_) {
      s << " (winograd F(" << winograd_->tile() << "x" << winograd_->tile() << ", 3x3) on avx512";
      if (winograd_min_batch_ > 1) s << " from batch " << winograd_min_batch_;
      s << ")";
    }
    // What the active ISA runs, as below.
    if (conv_.phase_split(dispatch())) s << " (as stride-1 over its stride phases)";
    if (g.groups > 1 && g.in_channels_per_group() == 1) {
      // What the active ISA runs (another setIsa() before a run may choose the other path).
      switch (depthwise_auto_path(dispatch(), g)) {
        case WindowPath::kStride2Rows: s << " (depthwise stride-2 rows)"; break;
        case WindowPath::kChannelBlocks: s << " (depthwise channel blocks)"; break;
        default: s << " (depthwise planar)"; break;
      }
    }
    if (considered_) {
      // Rounded, but never 100% unless every weight is zero.
      int pct = static_cast<int>(std::lround(zero_fraction_ * 100.0));
      if (pct == 100 && zero_fraction_ < 1.0) pct = 99;
      // The same words for both sparse kernels (the geometry says which: see the file comment):
      // planInfo() readers and the docs match "sparse <pattern> N%" at the end.
      if (sparse_direct_) {
        s << " sparse " << sparse_pattern_name(sparse_direct_->pattern()) << " " << pct << "%";
      } else if (sparse_) {
        s << " sparse " << sparse_pattern_name(sparse_->pattern()) << " " << pct << "%";
      } else if (sparse_nm_) {
        s << " sparse " << nm_pattern_name({sparse_nm_->n(), sparse_nm_->m()}) << " " << pct << "%";
      } else {
        s << " dense, " << pct << "% zeros";
      }
    }
    return s.str();
  }

 private:
  // Images per chunk: a cache-sized share for every thread the run may use (each core has its
  // own L2, and the convolution spreads a chunk's images over the threads).
  size_t chunk_images(size_t batch, size_t threads) const {
    const Conv2dGeometry& g = conv_.geometry();
    const size_t bytes = g.out_channels * g.out_plane() * sizeof(float);
    const size_t per_thread = std::max<size_t>(1, kFusedChunkBytes / bytes);
    return std::max<size_t>(1, std::min(batch, per_thread * threads));
  }
  // Winograd where it applies and `t` runs it, else conv_.run on `t` (adding `residual` when not
  // null). True when the output has its residual and activation already (conv_.run with the clamp
  // or post function fused); else activate() must follow.
  bool convolve(const DispatchTable& t, const float* x, float* y, size_t batch, float* scratch,
                size_t max_threads, bool sparse, const float* residual) const {
    if (sparse) {
      sparse_convolve(t, x, y, batch, scratch, max_threads);
      return false;
    }
    if (runs_winograd(t, batch) && winograd_->run(t, x, y, batch, nullptr, kernel_relu(), scratch, max_threads)) return false;
    conv_.run(t, x, y, batch, scratch, max_threads, residual);
    // A residual step given none here: activate() adds it and runs the activation.
    if (residual_ && residual == nullptr) return false;
    return clamp_fused_ || post_fused_;
  }
  size_t convolve_scratch_floats(size_t batch, size_t threads) const {
    size_t plain = conv_.scratch_floats(batch);
    if (sparse_ || sparse_nm_) plain = std::max(plain, sparse_slots(batch, threads) * sparse_col_floats());
    if (sparse_direct_) plain = std::max(plain, sparse_direct_->scratch_floats(batch, threads));
    return winograd_ ? std::max(plain, winograd_->scratch_floats(batch, threads, nullptr)) : plain;
  }
  // Column matrix of one image (none for pointwise: the input planes are the columns).
  size_t sparse_col_floats() const {
    const Conv2dGeometry& g = conv_.geometry();
    return g.is_pointwise() ? 0 : round16(g.patch() * g.out_plane());
  }
  // Images run side by side, one thread and one column buffer each.
  static size_t sparse_slots(size_t batch, size_t threads) {
    return std::max<size_t>(1, std::min({batch, std::max<size_t>(threads, 1), size_t{kMaxSparseSlots}}));
  }
  static constexpr size_t kMaxSparseSlots = 64;
  // y = W_sparse * im2col(x) + bias, ReLU inside when the activation is ReLU.
  void sparse_convolve(const DispatchTable& t, const float* x, float* y, size_t batch, float* scratch,
                       size_t max_threads) const {
    if (sparse_direct_) {
      sparse_direct_->run(t.f32_sparse_conv, x, y, batch, nullptr, scratch, max_threads);
      return;
    }
    const Conv2dGeometry& g = conv_.geometry();
    const size_t plane = g.out_plane(), in_image = g.in_channels * g.in_plane(), out_image = g.out_channels * plane;
    const size_t colf = sparse_col_floats();
    const float* bias = sparse_bias_.empty() ? nullptr : sparse_bias_.data();
    const bool relu = kernel_relu();
    const size_t slots = sparse_slots(batch, max_threads);
    auto image = [&](size_t i, size_t slot, size_t threads) {
      const float* cols = x + i * in_image;
      if (!g.is_pointwise()) {
        float* col = scratch + slot * colf;
        im2col(t.f32_conv, g, g.in_channels, cols, 0, plane, col, plane);
        cols = col;
      }
      if (sparse_nm_) {
        spmm_nm_f32(t.f32_nm_spmm, *sparse_nm_, plane, cols, plane, y + i * out_image, plane, bias, relu, threads);
      } else {
        spmm_f32(*sparse_, plane, cols, plane, y + i * out_image, plane, bias, relu, threads);
      }
    };
    if (slots <= 1) {
      for (size_t i = 0; i < batch; ++i) image(i, 0, max_threads);
      return;
    }
    parallel_for(
        slots,
        [&](size_t s) {
          for (size_t i = s; i < batch; i += slots) image(i, s, 1);
        },
        max_threads);
  }
  // The residual (when not null) and the activation as a pass over the output, for the paths
  // that did not apply them to each piece: the same order, so the same bits.
  void activate(float* y, const float* residual, size_t batch, size_t max_threads) const {
    if (residual == nullptr && (act_.kind == Activation::kNone || kernel_relu())) return;
    const Conv2dGeometry& g = conv_.geometry();
    for_chunks(batch * g.out_channels * g.out_plane(), kElementwiseGrain, max_threads, [&](size_t b, size_t e) {
      if (residual != nullptr && act_.is_relu()) {
        // The sum and its ReLU in one loop, as the Add step's kAddRelu (and post_'s, without the
        // post function: a residual step's ReLU is never post_).
        for (size_t i = b; i < e; ++i) {
          const float s = y[i] + residual[i];
          y[i] = s < 0.0f ? 0.0f : s;
        }
        return;
      }
      if (residual != nullptr) {
        for (size_t i = b; i < e; ++i) y[i] += residual[i];
      }
      if (!kernel_relu()) act_.apply(y + b, e - b);
    });
  }

  Conv2dPlan conv_;
  Activation act_;
  bool residual_;  // a second input added before act_ (attr residual)
  bool accumulates_ = false;  // residual_, and the output may be written over it (in_place_input)
  // act_ is ReLU and the kernels apply it (never after a residual).
  bool kernel_relu() const { return act_.is_relu() && !residual_; }
  bool clamp_fused_ = false;
  bool post_fused_ = false;  // conv_ applies act_ itself (fuse_post)
  bool fused_pool_;
  Pool2d pool_;
  bool direct_pool_ = false;
  ConvMaxPool direct_window_;
  std::unique_ptr<const WinogradConv> winograd_;  // null unless asked for and winograd_fits
  size_t winograd_min_batch_ = 1;                  // smaller batches run the GEMM (winograd_min_batch)
  // Winograd on `t` at this batch.
  bool runs_winograd(const DispatchTable& t, size_t batch) const {
    return winograd_ && batch >= winograd_min_batch_ && WinogradConv::available(t);
  }
  bool winograd_pool_ = false;                     // the fused pool runs inside the Winograd kernel
  bool considered_ = false;                        // zeros >= kSparseFloor and sparse was allowed
  double zero_fraction_ = 0;
  // At most one is non-null; then the step runs on it.
  std::unique_ptr<const PackedSparseF32> sparse_;          // im2col + SpMM (strided, pointwise)
  std::unique_ptr<const PackedNmF32> sparse_nm_;           // im2col + N:M SpMM (strided, pointwise)
  std::unique_ptr<const SparseConvF32> sparse_direct_;     // direct sparse convolution (stride 1)
  bool sparse_pool_ = false;                               // the max pool runs inside sparse_direct_
  std::vector<float> sparse_bias_;
  bool sparse_on() const { return sparse_ != nullptr || sparse_nm_ != nullptr || sparse_direct_ != nullptr; }
};

}  // namespace

std::unique_ptr<PlanStep> make_conv(const StepContext& ctx) {
  const bool residual = ctx.integer_or("residual", 0, 1, 0) == 1;
  ctx.expect_inputs(residual ? 2 : 1, residual ? 2 : 1);
  ctx.expect_outputs(1);
  ctx.expect_input_rank(0, 3);
  const PlanShape& x = ctx.in()[0];
  const PlanTensor& w = ctx.weight("W");
  if (w.shape.size() != 4) ctx.fail("weights.W", "a 4-D weight (OIHW)", shape_text(w.shape));
  Conv2dGeometry g = conv_geometry_from_attrs(ctx, x, w.shape[0], {int64_t(w.shape[2]), int64_t(w.shape[3])});
  const std::vector<size_t> w_shape = {g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w};
  ctx.weight("W", w_shape);
  const PlanTensor* b = ctx.weight_opt("B", {g.out_channels});
  complete_conv_geometry(ctx, x, g);
  const std::string pool_op = ctx.choice_or("pool", {"None", "MaxPool", "AveragePool"}, "None");
  // winograd 1: F(2x2, 3x3) or F(4x4, 3x3) where it pays, by cost (winograd_min_batch, winograd_tile_for), unless winograd_tile
  // names one (the tests run both).
  const bool winograd = ctx.integer_or("winograd", 0, 1, 0) == 1;
  const int64_t tile = ctx.integer_or("winograd_tile", 0, 4, 0);
  if (tile != 0 && tile != 2 && tile != 4) ctx.fail("attrs.winograd_tile", "0 (by cost), 2 or 4", std::to_string(tile));
  const size_t winograd_tile = !winograd ? kNoWinograd : tile == 0 ? kWinogradByCost : static_cast<size_t>(tile);
  const SparseMode sparse = parse_sparse_mode(ctx);
  if (pool_op == "None") {
    ctx.expect_output_shape(0, {g.out_channels, g.out_height, g.out_width});
    if (residual) ctx.expect_input_shape(1, {g.out_channels, g.out_height, g.out_width});
    return std::make_unique<ConvStep>(g, w.data, b ? b->data : nullptr, Activation::parse(ctx), nullptr, winograd_tile, sparse,
                                      residual);
  }
  if (residual) ctx.fail("attrs.residual", "0 with a fused pool (the residual is added to the convolution's output)", "1");
  const Pool2d pool = Pool2d::parse(ctx, "pool_", {g.out_channels, g.out_height, g.out_width}, pool_op == "MaxPool");
  ctx.expect_output_shape(0, pool.output_shape(g.out_channels, 2));
  return std::make_unique<ConvStep>(g, w.data, b ? b->data : nullptr, Activation::parse(ctx), &pool, winograd_tile, sparse,
                                    false);
}

}  // namespace runtime
}  // namespace kiln
