// PackedSparseS8, and the two plans that run it (kiln/s8-sparse.h): the layout work (weights
// reordered and packed once, the input rewritten per image or transposed per call), the split
// over threads, and the choice of kernel. The kernels are in s8-sparse-<isa>.cc.
#include "kiln/s8-sparse.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "common/dispatch.h"
#include "common/threads.h"
#include "kiln/thread-pool.h"
#include "quant/requantize.h"
#include "s8-gemm/s8-gemm-ukernel.h"
#include "s8-sparse/s8-sparse-ukernel.h"

namespace kiln {
namespace {

constexpr size_t kMaxDim = 0x7fffffff;
// Below this many multiply-adds (stored blocks x 4 x outputs) per task, waking a helper costs more
// than it saves (as S8SmallConvPool's bar).
constexpr size_t kMinMacsPerTask = size_t(2) << 20;

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

size_t tasks_for(size_t threads, size_t units, double macs) {
  const double by_work = macs / static_cast<double>(kMinMacsPerTask);
  return std::max<size_t>(1, std::min<double>(static_cast<double>(std::min(threads, units)), by_work));
}

}  // namespace

const S8SparseKernels& s8_sparse_kernels(const DispatchTable& t) {
  const char* dense = s8_gemm_kernels(t).name;
  if (t.s8_sparse_avxvnni.conv_channels != nullptr && dense != nullptr && std::strcmp(dense, "avxvnni") == 0) {
    return t.s8_sparse_avxvnni;
  }
  return t.s8_sparse;
}

PackedSparseS8::PackedSparseS8(size_t rows, size_t depth, const int8_t* w, size_t ldw) : rows_(rows), depth_(depth) {
  if (rows > kMaxDim || depth > kMaxDim - 3) throw std::invalid_argument("PackedSparseS8: rows or depth over 2^31 - 1");
  if (ldw < depth) throw std::invalid_argument("PackedSparseS8: ldw < depth");
  if (w == nullptr && rows * depth > 0) throw std::invalid_argument("PackedSparseS8: null weights");
  const size_t groups = this->groups();
  row_ptr_.assign(1, 0);
  row_ptr_.reserve(rows + 1);
  row_sums_.assign(rows, 0);
  for (size_t r = 0; r < rows; ++r) {
    const int8_t* row = w + r * ldw;
    int32_t sum = 0;
    for (size_t g = 0; g < groups; ++g) {
      uint8_t bytes[4] = {0, 0, 0, 0};
      bool any = false;
      for (size_t i = 0; i < 4 && 4 * g + i < depth; ++i) {
        const int8_t v = row[4 * g + i];
        bytes[i] = static_cast<uint8_t>(v);
        sum = wrap_add(sum, v);  // as the dense packers' column sums
        any = any || v != 0;
        nonzeros_ += v != 0 ? 1 : 0;
      }
      if (!any) continue;
      int32_t word;
      std::memcpy(&word, bytes, 4);
      group_.push_back(static_cast<uint32_t>(g));
      word_.push_back(word);
    }
    row_sums_[r] = sum;
    if (group_.size() > 0xffffffffu) throw std::invalid_argument("PackedSparseS8: too many blocks");
    row_ptr_.push_back(static_cast<uint32_t>(group_.size()));
  }
}

double PackedSparseS8::zero_fraction() const {
  const size_t total = rows_ * depth_;
  return total == 0 ? 0.0 : 1.0 - static_cast<double>(nonzeros_) / static_cast<double>(total);
}

double PackedSparseS8::block_zero_fraction() const {
  const size_t total = rows_ * groups();
  return total == 0 ? 0.0 : 1.0 - static_cast<double>(blocks()) / static_cast<double>(total);
}

size_t PackedSparseS8::bytes() const {
  return (row_ptr_.size() + group_.size()) * sizeof(uint32_t) + (word_.size() + row_sums_.size()) * sizeof(int32_t);
}

// ---- convolution ----

bool S8SparseConv::fits(const Conv2dGeometry& g, const S8ConvQuant& q, bool pool2x2) {
  if (!conv2d_geometry_valid(g) || g.groups != 1 || g.stride_h != 1 || g.stride_w != 1) return false;
  if (g.out_height == 0 || g.out_width == 0 || g.out_channels == 0 || g.in_channels == 0) return false;
  if (q.w_scale == nullptr || (q.w_scale_count != 1 && q.w_scale_count != g.out_channels) || q.y_min > q.y_max) return false;
  // The rewritten image and its offsets are indexed in int32 dwords.
  const double hp = static_cast<double>(g.in_height + g.pad_top + g.pad_bottom);
  const double wp = static_cast<double>(g.in_width + g.pad_left + g.pad_right);
  if (static_cast<double>((g.in_channels + 3) / 4 + 1) * hp * wp + wp + 64 > 4.0e8) return false;
  if (pool2x2) {
    if (g.out_height < 2 || g.out_width < 2) return false;
    // The pool runs on the int32 sums: exact only where requantization is monotone non-decreasing.
    for (size_t o = 0; o < g.out_channels; ++o) {
      if (!(q.multiplier(o) >= 0.0f)) return false;  // NaN fails too
    }
  }
  return true;
}

S8SparseConv::S8SparseConv(const Conv2dGeometry& g, const int8_t* weight_oihw, const int32_t* bias, const S8ConvQuant& q,
                           bool pool2x2)
    : g_(g), pool_(pool2x2), x_zero_point_(q.x_zero_point) {
  if (!fits(g, q, pool2x2)) throw std::invalid_argument("S8SparseConv: unsupported geometry or quantization");
  if (weight_oihw == nullptr) throw std::invalid_argument("S8SparseConv: null weights");
  const size_t c = g.in_channels, c4 = (c + 3) / 4, kh = g.kernel_h, kw = g.kernel_w, taps = kh * kw;
  hp_ = g.in_height + g.pad_top + g.pad_bottom;
  wp_ = g.in_width + g.pad_left + g.pad_right;
  // Aligned layout (small images, kernels up to kMaxAlignedKw wide): the row pitch rounded up to 16
  // dwords and one copy of the planes per kernel column, shifted left by kw * dilation_w, so every
  // block's loads start on a 64-byte line (offset = copy + group plane + kh rows, all multiples of
  // 16). The unaligned loads of the plain layout cross a cache line 15 times in 16 and cost two
  // loads each; the block loop is load-bound. A wider pitch computes more dropped columns (MNIST
  // conv2: 10 vectors a channel instead of 9), the copies cost a memcpy each.
  const size_t wp16 = round_up(wp_, kS8SparseLanes);
  const size_t copy16 = round_up((c + 3) / 4 * hp_ * wp16 + wp16 + 2 * kS8SparseLanes, kS8SparseLanes);
  aligned_ = kw <= kMaxAlignedKw && copy16 * 4 * kw <= kMaxAlignedBytes;
  if (aligned_) wp_ = wp16;
  rows_ = pool_ ? g.out_height / 2 * 2 : g.out_height;  // a fused pool reads only these rows
  positions_ = rows_ * wp_;
  // OIHW -> O x (kh, kw, c padded to 4): the reduction order whose 4 consecutive steps are a block.
  const size_t depth = taps * c4 * 4;
  std::vector<int8_t> reordered(g.out_channels * depth, 0);
  for (size_t o = 0; o < g.out_channels; ++o) {
    for (size_t ci = 0; ci < c; ++ci) {
      for (size_t t = 0; t < taps; ++t) reordered[o * depth + t * c4 * 4 + ci] = weight_oihw[(o * c + ci) * taps + t];
    }
  }
  packed_ = PackedSparseS8(g.out_channels, depth, reordered.data(), depth);
  offset_.resize(packed_.blocks());
  for (size_t b = 0; b < packed_.blocks(); ++b) {
    const size_t gi = packed_.group()[b], tap = gi / c4, cg = gi % c4;
    offset_[b] = aligned_ ? static_cast<int32_t>((tap % kw) * copy_dwords() + cg * hp_ * wp_ + (tap / kw) * g.dilation_h * wp_)
                          : static_cast<int32_t>(cg * hp_ * wp_ + (tap / kw) * g.dilation_h * wp_ + (tap % kw) * g.dilation_w);
  }
  init_.resize(g.out_channels);
  scale_.resize(g.out_channels);
  for (size_t o = 0; o < g.out_channels; ++o) {
    init_[o] = column_offset(bias ? bias[o] : 0, q.x_zero_point, packed_.row_sums()[o]);
    scale_[o] = q.multiplier(o);
  }
  lo_ = static_cast<float>(static_cast<int>(q.y_min) - q.y_zero_point);
  hi_ = static_cast<float>(static_cast<int>(q.y_max) - q.y_zero_point);
  y_zero_point_ = q.y_zero_point;
}

// Reads of a position tile reach at most one row pitch + the lane padding past the last group.
size_t S8SparseConv::copy_dwords() const {
  return round_up((g_.in_channels + 3) / 4 * hp_ * wp_ + wp_ + 2 * kS8SparseLanes, kS8SparseLanes);
}
size_t S8SparseConv::image_dwords() const { return copy_dwords() * (aligned_ ? g_.kernel_w : 1); }
size_t S8SparseConv::acc_ints() const { return round_up(positions_, kS8SparseLanes) + 4 * kS8SparseLanes; }
// stage_values' layout (s8-sparse-avx512vnni.cc): each output row in whole vectors of 16 int32,
// a pooled row holding 8 pooled columns per vector.
// ... or every position's pooled maximum (the AVX-512 kernel's in-register pool).
size_t S8SparseConv::values_stride() const {
  const size_t per_vector = pool_ ? 8 : 16;
  return std::max(pooled_height() * round_up(pooled_width(), per_vector) / per_vector * kS8SparseLanes,
                  round_up(positions_, kS8SparseLanes));
}
size_t S8SparseConv::slot_bytes() const {
  return round_up(image_dwords() * 4 + (2 * acc_ints() + kS8SparseLanes * values_stride()) * 4, 64);
}

size_t S8SparseConv::scratch_bytes(size_t, size_t threads) const {
  const size_t limit = std::max<size_t>(1, threads == 0 ? num_threads() : threads);
  return limit * slot_bytes() + 64;
}

size_t S8SparseConv::weight_bytes() const {
  return packed_.bytes() + (offset_.size() + init_.size()) * sizeof(int32_t) + scale_.size() * sizeof(float);
}

void S8SparseConv::transform(const DispatchTable& t, const uint8_t* in, uint8_t* x) const {
  const size_t c = g_.in_channels, full = c / 4, rest = c % 4, plane = hp_ * wp_;
  // Padding, padded channels and slack hold the zero point: a padded tap adds (zp - zp) * w = 0
  // exactly as in the dense im2col.
  const size_t copy = copy_dwords() * 4;
  std::memset(x, x_zero_point_, copy);
  const S8SpTransformFn kernel = s8_sparse_kernels(t).transform;
  if (kernel != nullptr && rest == 0) {
    kernel(in, g_.in_height, g_.in_width, full, plane, wp_, g_.pad_top, g_.pad_left, x);
  } else {
    for (size_t h = 0; h < g_.in_height; ++h) {
      for (size_t w = 0; w < g_.in_width; ++w) {
        const uint8_t* src = in + (h * g_.in_width + w) * c;
        uint8_t* dst = x + 4 * ((h + g_.pad_top) * wp_ + w + g_.pad_left);
        for (size_t k = 0; k < full; ++k) std::memcpy(dst + 4 * k * plane, src + 4 * k, 4);
        if (rest) std::memcpy(dst + 4 * full * plane, src + 4 * full, rest);
      }
    }
  }
  if (!aligned_) return;
  // Copy kw: dword j = dword j + kw * dilation_w of copy 0 (the tail past it: the zero point).
  for (size_t kw = 1; kw < g_.kernel_w; ++kw) {
    const size_t shift = 4 * kw * g_.dilation_w;
    std::memcpy(x + kw * copy, x + shift, copy - shift);
    std::memset(x + kw * copy + copy - shift, x_zero_point_, shift);
  }
}

void S8SparseConv::channels(const DispatchTable& t, const uint8_t* x, uint8_t* out, size_t o0, size_t o1, int32_t* acc) const {
  const S8SpConvChannelsFn kernel = s8_sparse_kernels(t).conv_channels;
  S8SpConvImage im;
  im.x = x;
  im.positions = positions_;
  im.wp = wp_;
  im.rows = rows_;
  im.out_w = g_.out_width;
  im.pool = pool_;
  im.pooled_h = pooled_height();
  im.pooled_w = pooled_width();
  im.out_stride = g_.out_channels;
  im.lo = lo_;
  im.hi = hi_;
  im.zero_point = y_zero_point_;
  im.acc = acc;
  im.acc_plane = acc_ints();
  im.values = acc + 2 * acc_ints();
  im.values_stride = values_stride();
  const uint32_t* rp = packed_.row_ptr();
  // The kernel takes the channels a batch at a time (its pipelining spans a batch).
  constexpr size_t kBatch = kS8SparseLanes;
  S8SpConvChannel ch[kBatch];
  for (size_t c0 = o0; c0 < o1; c0 += kBatch) {
    const size_t count = std::min(kBatch, o1 - c0);
    for (size_t i = 0; i < count; ++i) {
      const size_t o = c0 + i;
      ch[i].offset = offset_.data() + rp[o];
      ch[i].word = packed_.word() + rp[o];
      ch[i].blocks = rp[o + 1] - rp[o];
      ch[i].init = init_[o];
      ch[i].scale = scale_[o];
    }
    kernel(im, ch, count, out + c0);
  }
}

void S8SparseConv::run(const uint8_t* in, uint8_t* out, size_t batch, uint8_t* scratch, size_t max_threads) const {
  run(dispatch(), in, out, batch, scratch, max_threads);
}

void S8SparseConv::run(const DispatchTable& t, const uint8_t* in, uint8_t* out, size_t batch, uint8_t* scratch,
                       size_t max_threads) const {
  if (batch == 0) return;
  const size_t threads = resolve_threads(max_threads);
  const size_t in_image = g_.in_height * g_.in_width * g_.in_channels;
  const size_t out_image = pooled_height() * pooled_width() * g_.out_channels;
  const size_t slot = slot_bytes();
  uint8_t* base = scratch + (64 - reinterpret_cast<uintptr_t>(scratch) % 64) % 64;
  auto x_of = [&](size_t s) { return base + s * slot; };
  auto acc_of = [&](size_t s) { return reinterpret_cast<int32_t*>(base + s * slot + image_dwords() * 4); };
  const double image_macs = 4.0 * static_cast<double>(packed_.blocks()) * static_cast<double>(positions_);
  if (batch >= threads || threads == 1) {
    // Images in parallel, each task with its own slot.
    const size_t tasks = tasks_for(threads, batch, image_macs * static_cast<double>(batch));
    auto work = [&](size_t task) {
      for (size_t b = batch * task / tasks; b < batch * (task + 1) / tasks; ++b) {
        transform(t, in + b * in_image, x_of(task));
        channels(t, x_of(task), out + b * out_image, 0, g_.out_channels, acc_of(task));
      }
    };
    if (tasks == 1) {
      work(0);
    } else {
      parallel_for(tasks, work, tasks);
    }
    return;
  }
  // Fewer images than threads: each image rewritten once, its channels split.
  const size_t tasks = tasks_for(threads, g_.out_channels, image_macs);
  for (size_t b = 0; b < batch; ++b) {
    transform(t, in + b * in_image, x_of(0));
    auto work = [&](size_t task) {
      channels(t, x_of(0), out + b * out_image, g_.out_channels * task / tasks, g_.out_channels * (task + 1) / tasks,
               acc_of(task));
    };
    if (tasks == 1) {
      work(0);
    } else {
      parallel_for(tasks, work, tasks);
    }
  }
}

// ---- GEMM ----

S8SparseGemm::S8SparseGemm(size_t k, size_t n, const int8_t* w, bool trans, const int32_t* bias, const float* scale,
                           uint8_t a_zero_point, bool float_output, uint8_t y_zero_point, uint8_t y_min, uint8_t y_max)
    : float_output_(float_output), y_zero_point_(y_zero_point), a_zero_point_(a_zero_point) {
  if ((w == nullptr && k * n > 0) || (scale == nullptr && n > 0)) throw std::invalid_argument("S8SparseGemm: null weights or scales");
  if (!float_output && y_min > y_max) throw std::invalid_argument("S8SparseGemm: y_min > y_max");
  if (k > kMaxDepth || n > kMaxDim) throw std::invalid_argument("S8SparseGemm: K or N too large");
  if (trans) {
    packed_ = PackedSparseS8(n, k, w, k);
  } else {
    std::vector<int8_t> wt(k * n);
    for (size_t p = 0; p < k; ++p) {
      for (size_t j = 0; j < n; ++j) wt[j * k + p] = w[p * n + j];
    }
    packed_ = PackedSparseS8(n, k, wt.data(), k);
  }
  init_.resize(n);
  for (size_t j = 0; j < n; ++j) init_[j] = column_offset(bias ? bias[j] : 0, a_zero_point, packed_.row_sums()[j]);
  scale_.assign(scale, scale + n);
  lo_ = static_cast<float>(static_cast<int>(y_min) - y_zero_point);
  hi_ = static_cast<float>(static_cast<int>(y_max) - y_zero_point);
}

size_t S8SparseGemm::scratch_bytes(size_t batch, size_t threads) const {
  const size_t limit = std::max<size_t>(1, threads == 0 ? num_threads() : threads);
  const size_t groups = packed_.groups();
  if (batch >= kLanesFrom) {
    const size_t lanes = round_up(batch, kS8SparseLanes);
    return groups * lanes * 4 + limit * kS8SparseLanes * lanes * 4 + 64;
  }
  return packed_.depth() % 4 == 0 ? 0 : batch * groups * 4;
}

size_t S8SparseGemm::weight_bytes() const { return packed_.bytes() + init_.size() * 4 + scale_.size() * 4; }

void S8SparseGemm::run(const uint8_t* a, void* out, size_t batch, uint8_t* scratch, size_t max_threads) const {
  run(dispatch(), a, out, batch, scratch, max_threads);
}

void S8SparseGemm::run(const DispatchTable& t, const uint8_t* a, void* out, size_t batch, uint8_t* scratch,
                       size_t max_threads) const {
  const size_t n = packed_.rows(), k = packed_.depth(), groups = packed_.groups();
  if (batch == 0 || n == 0) return;
  const S8SparseKernels& kern = s8_sparse_kernels(t);
  S8SpmmJob j;
  j.m = batch;
  j.row_ptr = packed_.row_ptr();
  j.group = packed_.group();
  j.word = packed_.word();
  j.init = init_.data();
  j.scale = scale_.data();
  j.float_output = float_output_;
  j.lo = lo_;
  j.hi = hi_;
  j.zero_point = y_zero_point_;
  j.out = out;
  j.ldc = n;
  S8SpmmFn fn;
  uint8_t* acc_base = nullptr;
  if (batch >= kLanesFrom) {
    // [groups][lanes][4]: the batch in lanes. Lanes past the batch and steps past K hold 0 (their
    // results are dropped / their weights are zero).
    const size_t lanes = round_up(batch, kS8SparseLanes);
    uint8_t* xt = scratch + (64 - reinterpret_cast<uintptr_t>(scratch) % 64) % 64;
    if (kern.transpose != nullptr && k % 4 == 0) {
      kern.transpose(a, batch, k, lanes, xt);
    } else {
      std::memset(xt, 0, groups * lanes * 4);
      for (size_t i = 0; i < batch; ++i) {
        const uint8_t* row = a + i * k;
        for (size_t g = 0; g < k / 4; ++g) std::memcpy(xt + 4 * (g * lanes + i), row + 4 * g, 4);
        if (k % 4) std::memcpy(xt + 4 * ((k / 4) * lanes + i), row + k / 4 * 4, k % 4);
      }
    }
    j.x = xt;
    j.lanes = lanes;
    acc_base = xt + groups * lanes * 4;
    fn = kern.spmm_lanes;
  } else {
    j.ldx = groups * 4;
    j.x = a;
    if (k % 4 != 0) {  // rows padded to whole groups, so no read passes the input's end
      std::memset(scratch, 0, batch * groups * 4);
      for (size_t i = 0; i < batch; ++i) std::memcpy(scratch + i * groups * 4, a + i * k, k);
      j.x = scratch;
    }
    fn = kern.spmm_gather;
  }
  const size_t threads = resolve_threads(max_threads);
  const size_t tasks = tasks_for(threads, n, 4.0 * static_cast<double>(packed_.blocks()) * static_cast<double>(batch));
  auto work = [&](size_t task) {
    S8SpmmJob mine = j;
    if (acc_base) mine.acc = reinterpret_cast<int32_t*>(acc_base + task * kS8SparseLanes * j.lanes * 4);
    fn(mine, n * task / tasks, n * (task + 1) / tasks);
  };
  if (tasks == 1) {
    work(0);
  } else {
    parallel_for(tasks, work, tasks);
  }
}

}  // namespace kiln
