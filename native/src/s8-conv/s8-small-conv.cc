// S8SmallConvPool: weight packing, the shape check and the split over threads; the kernel is in
// s8-small-conv-avx512vnni.cc.
#include "s8-conv/s8-small-conv.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/dispatch.h"
#include "common/threads.h"
#include "s8-conv/s8-conv-ukernel.h"
#include "kiln/thread-pool.h"
#include "quant/requantize.h"

namespace kiln {
namespace {

// Below this many multiply-adds per extra thread, waking a helper costs more than it saves
// (SeedCNN MNIST conv1 at batch 8 is ~1.6M).
constexpr size_t kMinMacsPerTask = size_t(2) << 20;

size_t groups_per_row(const Conv2dGeometry& g) { return (g.kernel_w * g.in_channels + 3) / 4; }

bool padded(const Conv2dGeometry& g) { return g.pad_top + g.pad_left + g.pad_bottom + g.pad_right > 0; }

}  // namespace

bool S8SmallConvPool::fits(const Conv2dGeometry& given, size_t pooled_h, size_t pooled_w, const S8ConvQuant& q) {
  if (!conv2d_geometry_valid(given)) return false;
  const Conv2dGeometry g = padding_made_real(given);
  if (!conv2d_geometry_valid(g) || g.groups != 1 || g.stride_h != 1 || g.stride_w != 1 || g.dilation_h != 1 ||
      g.dilation_w != 1) {
    return false;
  }
  if (g.out_channels == 0 || g.out_channels > 32 || g.kernel_h * groups_per_row(g) > S8SmallConvKernel::kMaxGroups) return false;
  if (g.in_height * g.in_width * g.in_channels > kMaxImageBytes) return false;
  if (pooled_h != g.out_height / 2 || pooled_w != g.out_width / 2 || pooled_h == 0 || pooled_w == 0) return false;
  if (q.y_min > q.y_max || (q.w_scale_count != 1 && q.w_scale_count != g.out_channels)) return false;
  for (size_t o = 0; o < g.out_channels; ++o) {
    if (!(q.multiplier(o) >= 0.0f)) return false;  // NaN fails too
  }
  return true;
}

S8SmallConvPool::S8SmallConvPool(const Conv2dGeometry& given, const int8_t* weight_oihw, const int32_t* bias,
                                 const S8ConvQuant& q)
    : given_(given), g_(padding_made_real(given)), x_zero_point_(q.x_zero_point) {
  const Conv2dGeometry& g = g_;
  const size_t c = g.in_channels, kh = g.kernel_h, kw = g.kernel_w, gr = groups_per_row(g), groups = kh * gr;
  const size_t o_count = g.out_channels, vectors = o_count > 16 ? 2 : 1;
  group_offset_.resize(groups);
  weight_.assign(groups * vectors * 64, 0);
  for (size_t i = 0; i < kh; ++i) {
    for (size_t j = 0; j < gr; ++j) {
      const size_t gi = i * gr + j;
      group_offset_[gi] = static_cast<int32_t>(i * g.in_width * c + 4 * j);
      for (size_t o = 0; o < o_count; ++o) {
        for (size_t t = 0; t < 4; ++t) {
          const size_t s = 4 * j + t;  // byte of the kernel row's segment
          if (s >= kw * c) continue;
          const size_t x = s / c, ch = s % c;
          weight_[(gi * vectors + o / 16) * 64 + (o % 16) * 4 + t] = weight_oihw[((o * c + ch) * kh + i) * kw + x];
        }
      }
    }
  }
  offset_.assign(32, 0);
  scale_.assign(32, 0.0f);
  const size_t k = g.patch();
  for (size_t o = 0; o < o_count; ++o) {
    int32_t sum = 0;
    for (size_t t = 0; t < k; ++t) sum = wrap_add(sum, weight_oihw[o * k + t]);
    offset_[o] = column_offset(bias ? bias[o] : 0, q.x_zero_point, sum);
    scale_[o] = q.multiplier(o);
  }
  k_.width = g.in_width;
  k_.channels = c;
  k_.kernel_h = kh;
  k_.kernel_w = kw;
  k_.groups = groups;
  k_.out_channels = o_count;
  k_.vectors = vectors;
  k_.pooled_h = g.out_height / 2;
  k_.pooled_w = g.out_width / 2;
  k_.group_offset = group_offset_.data();
  k_.weight = weight_.data();
  k_.offset = offset_.data();
  k_.scale = scale_.data();
  k_.lo = static_cast<float>(static_cast<int>(q.y_min) - q.y_zero_point);
  k_.hi = static_cast<float>(static_cast<int>(q.y_max) - q.y_zero_point);
  k_.zero_point = q.y_zero_point;
}

bool S8SmallConvPool::available(const DispatchTable& t) { return t.s8_conv.small_conv_pool != nullptr; }

bool S8SmallConvPool::run(const DispatchTable& t, const uint8_t* in, uint8_t* out, size_t batch,
                          size_t max_threads) const {
  const S8SmallConvPoolFn kernel = t.s8_conv.small_conv_pool;
  if (kernel == nullptr) return false;
  const size_t in_image = given_.in_height * given_.in_width * given_.in_channels;
  const size_t padded_image = g_.in_height * g_.in_width * g_.in_channels;
  const bool pad = padded(given_);
  const size_t out_image = k_.pooled_h * k_.pooled_w * k_.out_channels;
  const size_t units = batch * k_.pooled_h;  // (image, pooled row)
  if (units == 0) return true;
  const size_t threads = resolve_threads(max_threads);
  const size_t macs = batch * k_.pooled_h * k_.pooled_w * 4 * k_.out_channels * g_.patch();
  const size_t tasks = std::max<size_t>(1, std::min({threads, units, macs / kMinMacsPerTask}));
  auto work = [&](size_t task) {
    const size_t u0 = units * task / tasks, u1 = units * (task + 1) / tasks;
    for (size_t u = u0; u < u1;) {
      const size_t b = u / k_.pooled_h, r0 = u % k_.pooled_h;
      const size_t r1 = std::min(k_.pooled_h, r0 + (u1 - u));
      const uint8_t* image = in + b * in_image;
      // The kernel reads up to 3 bytes past an image: inside the next image except for the last.
      alignas(64) uint8_t copy[kMaxImageBytes + 64];
      if (pad) {
        // The padded image, borders at the zero point (= 0.0), in the task's own buffer.
        const size_t c = g_.in_channels, row = g_.in_width * c, given_row = given_.in_width * c;
        std::memset(copy, x_zero_point_, padded_image + 64);
        for (size_t h = 0; h < given_.in_height; ++h) {
          std::memcpy(copy + (h + given_.pad_top) * row + given_.pad_left * c, image + h * given_row, given_row);
        }
        image = copy;
      } else if (b + 1 == batch) {
        std::memcpy(copy, image, in_image);
        std::memset(copy + in_image, 0, 64);
        image = copy;
      }
      kernel(k_, image, out + b * out_image, r0, r1);
      u += r1 - r0;
    }
  };
  if (tasks == 1) {
    work(0);
  } else {
    parallel_for(tasks, work, tasks);
  }
  return true;
}

}  // namespace kiln
