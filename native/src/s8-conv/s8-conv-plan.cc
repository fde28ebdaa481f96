// S8Conv2dPlan: weights reordered to the NHWC patch order (kh, kw, c) and packed once per group;
// run = row blocks of (uint8 im2col, then the int8 GEMM with its requantize / dequantize epilogue
// writing straight into the NHWC output: GEMM row = output pixel, column = output channel). Where
// kernel rows are whole groups of 4 bytes the byte kernels skip im2col: the block's rows are one
// pointer per kernel row into the input (s8_indirection_nhwc), which the GEMM reads in place. In
// SeedCNN's padded conv2 (14x14, 32 -> 64) im2col was 15% of the layer; without it ResNet-18's
// 56x56 layers ran 10% faster.
//
// Threads: the output pixels of the batch are split into one contiguous range per task, each
// with its own im2col buffer of at most kBlockBytes, walked in blocks that stay in L2; the GEMMs
// then run on one thread. A single task runs its GEMMs on one thread too, unless it is large
// (few rows, many columns), when the GEMM splits its columns itself.
// Integer sums and a per-element epilogue make results independent of any split.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "common/dispatch.h"
#include "common/threads.h"
#include "kiln/s8-conv.h"
#include "kiln/thread-pool.h"
#include "s8-conv/s8-depthwise.h"
#include "s8-conv/s8-grouped.h"
#include "s8-conv/s8-im2col.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {

// im2col bytes one task fills before running the GEMM on them: well inside the 1 MiB L2.
constexpr size_t kBlockBytes = 128 * 1024;
// Rows are handed out in multiples of this (a multiple of every micro-kernel's mr is not needed
// for correctness, only to avoid ragged tiles).
constexpr size_t kRowQuantum = 16;
// Below this many multiply-adds per task, splitting over threads costs more than it saves. Waking
// a helper on a busy 2-core machine took longer than SeedCNN's conv2 at batch 1 (2.2M MACs: 8.7 us
// on one thread, 19 us on two), so the bar is higher than the GEMM's own 1M.
constexpr size_t kMinMacsPerTask = size_t(4) << 20;
// The same bar for the direct depthwise kernel in time rather than MACs: it runs at ~40-80 GMAC/s
// on AVX-512 VNNI (a sixth of the GEMM's rate; build-native/s8-depthwise-bench), so 4M MACs
// would be 50-100 us and no depthwise layer of MobileNetV2 at batch 1 (0.3-3.6M) would use the
// second thread. An eighth of a million is ~2-3 us per task, past the ~1-2 us a woken helper
// costs once the pool is running: MobileNetV2's depthwise layers took 0.29-0.32 ms in all on two
// threads at batch 1 against 0.37 ms with a quarter of a million, and as much with a sixteenth.
constexpr size_t kMinDepthwiseMacsPerTask = size_t(1) << 17;
// The grouped kernel of 8-channel groups runs at ~60-70 GMAC/s: half a million MACs is ~8 us per
// task, so RegNet's 14x14 layers (1.5M) use the second thread at batch 1.
constexpr size_t kMinGroupedMacsPerTask = size_t(1) << 19;

size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

// Output rows [0, rows) split into contiguous ranges, as many as the threads and the work allow
// (at least min_macs_per_task each); fn(begin, end) per range, on the calling thread when one.
template <class Fn>
void split_output_rows(size_t rows, double macs_per_row, size_t min_macs_per_task, size_t threads, const Fn& fn) {
  const double macs = static_cast<double>(rows) * macs_per_row;
  const size_t tasks =
      std::max<size_t>(1, std::min<double>(static_cast<double>(std::min(threads, rows)), macs / min_macs_per_task));
  if (tasks == 1) {
    fn(size_t{0}, rows);
    return;
  }
  parallel_for(tasks, [&](size_t t) { fn(rows * t / tasks, rows * (t + 1) / tasks); }, tasks);
}

}  // namespace

// volatile-free: float * float and float / float are each one correctly rounded operation on
// x86-64, so this is the fround sequence of docs/int8-ir.md.
float S8ConvQuant::multiplier(size_t o, bool float_output) const {
  const float xw = x_scale * w_scale[w_scale_count == 1 ? 0 : o];
  return float_output ? xw : xw / y_scale;
}

S8Conv2dPlan::S8Conv2dPlan(const Conv2dGeometry& g, const int8_t* weight_oihw, const int32_t* bias,
                           const S8ConvQuant& q, bool float_output)
    : g_(g), x_zero_point_(q.x_zero_point), y_zero_point_(q.y_zero_point), y_min_(q.y_min),
      y_max_(q.y_max), float_output_(float_output) {
  if (!conv2d_geometry_valid(g)) throw std::invalid_argument("S8Conv2dPlan: invalid geometry");
  if (q.w_scale_count != 1 && q.w_scale_count != g.out_channels) {
    throw std::invalid_argument("S8Conv2dPlan: w_scale_count must be 1 or out_channels");
  }
  if (!float_output && q.y_min > q.y_max) throw std::invalid_argument("S8Conv2dPlan: y_min > y_max");
  const size_t groups = g.groups, cg = g.in_channels_per_group(), og = g.out_channels_per_group();
  const size_t kh = g.kernel_h, kw = g.kernel_w, k = g.patch();

  depthwise_ = groups > 1 && cg == 1 && og == 1;
  if (depthwise_) {  // OIHW with I = 1 -> [tap][channel]
    dw_weight_.resize(g.weight_size());
    for (size_t o = 0; o < g.out_channels; ++o) {
      for (size_t t = 0; t < kh * kw; ++t) dw_weight_[t * g.out_channels + o] = weight_oihw[o * kh * kw + t];
    }
  }
  // OIHW -> O x (kh, kw, c): the column order of the NHWC im2col. Rows are padded with zero
  // weights to a multiple of 4, so the GEMM packs whole k groups of the im2col rows (the padded
  // columns hold the zero point and add nothing); the im2col-free path reads the input as is.
  indirect_ = !depthwise_ && !direct_input() && s8_indirect_supported(g);  // then k is a multiple of 4
  row_stride_ = direct_input() ? k : (k + 3) / 4 * 4;
  const size_t ks = row_stride_;
  std::vector<int8_t> reordered(g.out_channels * ks, 0);
  const size_t taps = kh * kw;
  for (size_t o = 0; o < g.out_channels; ++o) {
    const int8_t* src = weight_oihw + o * k;  // [c][tap]
    int8_t* dst = reordered.data() + o * ks;  // [tap][c]
    for (size_t t = 0; t < taps; ++t, dst += cg) {
      for (size_t c = 0; c < cg; ++c) dst[c] = src[c * taps + t];
    }
  }
  packed_.reserve(groups);
  for (size_t gi = 0; gi < groups && !depthwise_; ++gi) packed_.emplace_back(true, ks, og, reordered.data() + gi * og * ks, ks);
  if (bias) bias_.assign(bias, bias + g.out_channels);
  grouped_ = !depthwise_ && !float_output && s8_grouped_supported(g);
  if (grouped_) s8_grouped_pack(g, weight_oihw, bias, q.x_zero_point, grouped_weight_, grouped_bias_);

  scale_.resize(g.out_channels);
  for (size_t o = 0; o < g.out_channels; ++o) scale_[o] = q.multiplier(o, float_output);
  if (depthwise_) {
    s8_depthwise_pack_pairs(dw_weight_.data(), bias_.empty() ? nullptr : bias_.data(), scale_.data(), taps,
                            g.out_channels, x_zero_point_, dw_pair_weight_, dw_pair_bias_, dw_pair_scale_);
    // Both layouts: the active ISA may change between planning and running.
    s8_depthwise_pack_quads(dw_weight_.data(), bias_.empty() ? nullptr : bias_.data(), scale_.data(), taps,
                            g.out_channels, x_zero_point_, dw_quad_weight_, dw_quad_bias_, dw_quad_scale_);
  }
}

bool S8Conv2dPlan::direct_input() const { return g_.groups == 1 && g_.is_pointwise(); }

S8Conv2dPlan::Split S8Conv2dPlan::split(size_t batch, size_t threads) const {
  Split s;
  s.rows = batch * g_.out_plane();
  if (s.rows == 0) return s;
  const size_t k = std::max<size_t>(row_stride_, 1);
  const double macs = static_cast<double>(s.rows) * static_cast<double>(g_.out_channels) * static_cast<double>(k);
  size_t tasks = std::min(threads, div_up(s.rows, kRowQuantum));
  tasks = std::max<size_t>(1, std::min<double>(static_cast<double>(tasks), macs / kMinMacsPerTask));
  s.tasks = tasks;
  // One task with enough work for several (few rows, many columns): the GEMM splits columns.
  s.gemm_threads = tasks == 1 && macs >= 2.0 * kMinMacsPerTask ? threads : 1;
  const size_t cap = std::max(kRowQuantum, kBlockBytes / k / kRowQuantum * kRowQuantum);
  s.block_rows = std::min(cap, div_up(div_up(s.rows, tasks), kRowQuantum) * kRowQuantum);
  return s;
}

size_t S8Conv2dPlan::scratch_bytes(size_t batch, size_t threads) const {
  if (direct_input() || depthwise_) return 0;
  // run() may see fewer threads than asked for (a smaller pool), and tasks * block_rows is not
  // monotonic in the task count: take the largest over every count it could use.
  const size_t limit = threads == 0 ? num_threads() : threads;
  size_t most = 0;
  for (size_t t = 1; t <= limit; ++t) {
    const Split s = split(batch, t);
    most = std::max(most, s.tasks * task_scratch_bytes(s.block_rows));
    if (s.tasks < t) break;  // more threads change nothing from here on
  }
  return most;
}

size_t S8Conv2dPlan::task_scratch_bytes(size_t block_rows) const {
  const size_t im2col = block_rows * row_stride_;
  if (!indirect_) return im2col;
  // Pointer-aligned row pointers (kernel_h per row), the zero-point row, then the edge patches
  // (at most one per row); or the im2col block, when the ISA's kernels cannot read through rows.
  return std::max(im2col, alignof(const uint8_t*) + block_rows * g_.kernel_h * sizeof(const uint8_t*) +
                              g_.kernel_w * g_.in_channels + block_rows * g_.patch());
}

size_t S8Conv2dPlan::weight_bytes() const {
  size_t bytes = bias_.size() * sizeof(int32_t) + scale_.size() * sizeof(float) + dw_weight_.size() * sizeof(int16_t) +
                 dw_pair_weight_.size() * sizeof(int16_t) + dw_pair_bias_.size() * sizeof(int32_t) + dw_pair_scale_.size() * sizeof(float) +
                 dw_quad_weight_.size() + dw_quad_bias_.size() * sizeof(int32_t) + dw_quad_scale_.size() * sizeof(float) +
                 grouped_weight_.size() + grouped_bias_.size() * sizeof(int32_t);
  for (const PackedS8B& p : packed_) bytes += p.bytes();
  return bytes;
}

void S8Conv2dPlan::gemm(const DispatchTable& t, const uint8_t* a, size_t lda, size_t rows, size_t group, void* out,
                        size_t row0, size_t threads, const uint8_t* const* indirect_rows) const {
  const S8GemmKernels& kern = s8_gemm_kernels(t);
  const size_t o = g_.out_channels, og = g_.out_channels_per_group(), col0 = group * og;
  const int32_t* bias = bias_.empty() ? nullptr : bias_.data() + col0;
  S8IndirectA ind;
  ind.rows = indirect_rows;
  ind.segments = g_.kernel_h;
  ind.segment_groups = g_.kernel_w * g_.in_channels / 4;
  if (float_output_) {
    S8Dequantization dq;
    dq.scale = scale_.data() + col0;
    float* c = static_cast<float*>(out) + row0 * o + col0;
    if (indirect_rows) {
      s8gemm_dequantize_indirect(kern, rows, ind, x_zero_point_, packed_[group], bias, dq, c, o, threads);
    } else {
      s8gemm_dequantize(kern, rows, a, lda, x_zero_point_, packed_[group], bias, dq, c, o, threads);
    }
  } else {
    S8Requantization rq;
    rq.scale = scale_.data() + col0;
    rq.zero_point = y_zero_point_;
    rq.min = y_min_;
    rq.max = y_max_;
    uint8_t* c = static_cast<uint8_t*>(out) + row0 * o + col0;
    if (indirect_rows) {
      s8gemm_requantize_indirect(kern, rows, ind, x_zero_point_, packed_[group], bias, rq, c, o, threads);
    } else {
      s8gemm_requantize(kern, rows, a, lda, x_zero_point_, packed_[group], bias, rq, c, o, threads);
    }
  }
}

void S8Conv2dPlan::run_rows(const DispatchTable& t, const uint8_t* in, void* out, size_t row_begin, size_t row_end,
                            size_t block_rows, uint8_t* columns, size_t gemm_threads) const {
  const size_t k = row_stride_;
  if (indirect_ && s8_gemm_kernels(t).a_layout == S8ALayout::kU8) {
    // scratch: [row pointers][zero-point row][edge patches] (task_scratch_bytes).
    const size_t misalign = reinterpret_cast<uintptr_t>(columns) % alignof(const uint8_t*);
    uint8_t* base = columns + (misalign ? alignof(const uint8_t*) - misalign : 0);
    const uint8_t** rows = reinterpret_cast<const uint8_t**>(base);
    uint8_t* zero_row = base + block_rows * g_.kernel_h * sizeof(const uint8_t*);
    uint8_t* edges = zero_row + g_.kernel_w * g_.in_channels;
    std::memset(zero_row, x_zero_point_, g_.kernel_w * g_.in_channels);
    for (size_t r0 = row_begin; r0 < row_end; r0 += block_rows) {
      const size_t r1 = std::min(row_end, r0 + block_rows);
      s8_indirection_nhwc(g_, in, x_zero_point_, zero_row, r0, r1, rows, edges);
      gemm(t, nullptr, 0, r1 - r0, 0, out, r0, gemm_threads, rows);
    }
    return;
  }
  for (size_t r0 = row_begin; r0 < row_end; r0 += block_rows) {
    const size_t r1 = std::min(row_end, r0 + block_rows);
    for (size_t gi = 0; gi < g_.groups; ++gi) {
      s8_im2col_nhwc(g_, in, gi, x_zero_point_, r0, r1, k, columns);
      gemm(t, columns, k, r1 - r0, gi, out, r0, gemm_threads);
    }
  }
}

void S8Conv2dPlan::run_depthwise(const DispatchTable& table, const uint8_t* in, void* out, size_t batch,
                                 size_t threads) const {
  S8DepthwiseArgs a;
  a.run = table.s8_conv.depthwise_run;
  if (!dw_pair_weight_.empty()) {
    a.pair_weight = dw_pair_weight_.data();
    a.pair_bias = dw_pair_bias_.data();
    a.pair_scale = dw_pair_scale_.data();
  }
  if (!dw_quad_weight_.empty()) {
    a.quad_weight = dw_quad_weight_.data();
    a.quad_bias = dw_quad_bias_.data();
    a.quad_scale = dw_quad_scale_.data();
  }
  a.weight = dw_weight_.data();
  a.bias = bias_.empty() ? nullptr : bias_.data();
  a.scale = scale_.data();
  a.x_zero_point = x_zero_point_;
  a.float_output = float_output_;
  a.y_zero_point = y_zero_point_;
  a.y_min = y_min_;
  a.y_max = y_max_;
  const double macs_per_row = static_cast<double>(g_.out_width * g_.out_channels * g_.kernel_h * g_.kernel_w);
  split_output_rows(batch * g_.out_height, macs_per_row, kMinDepthwiseMacsPerTask, threads,
                    [&](size_t begin, size_t end) { s8_depthwise_rows(g_, a, in, out, begin, end); });
}

void S8Conv2dPlan::run_grouped(const DispatchTable& table, const uint8_t* in, uint8_t* out, size_t batch,
                               size_t threads) const {
  S8GroupedRun r;
  r.groups = g_.groups;
  r.quads = g_.in_channels_per_group() / 4;
  r.weight = grouped_weight_.data();
  r.bias = grouped_bias_.data();
  r.scale = scale_.data();
  r.y_zero_point = y_zero_point_;
  r.lo = static_cast<float>(static_cast<int32_t>(y_min_) - y_zero_point_);
  r.hi = static_cast<float>(static_cast<int32_t>(y_max_) - y_zero_point_);
  const S8GroupedRunFn fn = table.s8_conv.grouped_run_u8;
  const double macs_per_row =
      static_cast<double>(g_.out_width * g_.out_channels * g_.in_channels_per_group() * g_.kernel_h * g_.kernel_w);
  split_output_rows(batch * g_.out_height, macs_per_row, kMinGroupedMacsPerTask, threads,
                    [&](size_t begin, size_t end) { s8_grouped_rows(g_, r, fn, in, x_zero_point_, out, begin, end); });
}

void S8Conv2dPlan::run(const uint8_t* in, void* out, size_t batch, uint8_t* scratch, size_t max_threads) const {
  run(dispatch(), in, out, batch, scratch, max_threads);
}

void S8Conv2dPlan::run(const DispatchTable& table, const uint8_t* in, void* out, size_t batch, uint8_t* scratch,
                       size_t max_threads) const {
  const size_t threads = resolve_threads(max_threads);
  const size_t rows = batch * g_.out_plane();
  if (rows == 0) return;
  if (direct_input()) {
    gemm(table, in, g_.in_channels, rows, 0, out, 0, threads);
    return;
  }
  if (depthwise_) {
    run_depthwise(table, in, out, batch, threads);
    return;
  }
  if (grouped_ && table.s8_conv.grouped_run_u8 != nullptr) {
    run_grouped(table, in, static_cast<uint8_t*>(out), batch, threads);
    return;
  }
  const Split s = split(batch, threads);
  if (s.tasks <= 1) {
    run_rows(table, in, out, 0, rows, s.block_rows, scratch, s.gemm_threads);
    return;
  }
  const size_t slot = task_scratch_bytes(s.block_rows);
  parallel_for(
      s.tasks,
      [&](size_t t) {
        const size_t begin = rows * t / s.tasks, end = rows * (t + 1) / s.tasks;
        run_rows(table, in, out, begin, end, s.block_rows, scratch + t * slot, 1);
      },
      s.tasks);
}

}  // namespace kiln
