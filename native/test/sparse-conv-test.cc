// The direct sparse convolution (kiln/sparse-conv.h) on every ISA table this CPU has, against a
// float64 dense convolution of the same masked weights (then ReLU, then a float64 max pool):
// sparsities 0, 0.5, 0.9, 0.99 and 1 (an all-zero layer), patterns unstructured / 1x4 (run as
// unstructured) / 4x1 / 8x1, odd shapes, pads, dilation, 1x1 and 5x5 kernels, planes larger than
// one register tile and than one span, bias and ReLU on and off, fused pools (odd pooled sizes,
// overlapping windows), 1 and 2 threads (which must agree bit for bit). Input, output and scratch
// are page-guarded: a read or write past any of them faults.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "kiln/sparse-conv.h"
#include "sparse/sparse-conv-ukernel.h"
#include "test-util.h"

namespace {

using kiln::ConvMaxPool;
using kiln::Conv2dGeometry;
using kiln::SparseConvF32;
using kiln::SparsePattern;
using kiln_test::check;
using kiln_test::Guarded;
using kiln_test::Rng;

const float kSparsities[] = {0.0f, 0.5f, 0.9f, 0.99f, 1.0f};
const SparsePattern kPatterns[] = {SparsePattern::kUnstructured, SparsePattern::kBlock1x4, SparsePattern::kBlock4x1,
                                   SparsePattern::kBlock8x1};

struct Shape {
  size_t cin, h, w, cout, kh, kw, pt, pl, pb, pr, dh, dw;
};

bool make_geometry(const Shape& s, Conv2dGeometry* g) {
  g->in_channels = s.cin;
  g->in_height = s.h;
  g->in_width = s.w;
  g->out_channels = s.cout;
  g->kernel_h = s.kh;
  g->kernel_w = s.kw;
  g->pad_top = s.pt;
  g->pad_left = s.pl;
  g->pad_bottom = s.pb;
  g->pad_right = s.pr;
  g->dilation_h = s.dh;
  g->dilation_w = s.dw;
  g->out_height = kiln::window_output_size(s.h, s.pt, s.pb, s.kh, 1, s.dh);
  g->out_width = kiln::window_output_size(s.w, s.pl, s.pr, s.kw, 1, s.dw);
  return g->out_height > 0 && g->out_width > 0 && kiln::conv2d_geometry_valid(*g);
}

// OIHW weights with whole blocks (br output channels x one tap) zeroed with probability `sparsity`.
std::vector<float> masked_weights(const Conv2dGeometry& g, size_t br, float sparsity, Rng& rng) {
  const size_t m = g.out_channels, k = g.patch();
  std::vector<float> w(m * k);
  for (auto& v : w) v = rng.uniform();
  for (size_t r0 = 0; r0 < m; r0 += br) {
    for (size_t c = 0; c < k; ++c) {
      const bool zero = sparsity >= 1.0f || static_cast<float>(rng.next() >> 40) / 16777216.0f < sparsity;
      if (!zero) continue;
      for (size_t r = r0; r < r0 + br && r < m; ++r) w[r * k + c] = 0.0f;
    }
  }
  return w;
}

// Float64 convolution (+ bias, ReLU) of one image, and the bound on its rounding error.
void reference(const Conv2dGeometry& g, const std::vector<float>& w, const float* bias, bool relu, const float* x,
               std::vector<double>* y, std::vector<double>* tol) {
  const size_t oh = g.out_height, ow = g.out_width;
  y->assign(g.out_channels * oh * ow, 0.0);
  tol->assign(y->size(), 0.0);
  for (size_t oc = 0; oc < g.out_channels; ++oc) {
    for (size_t oy = 0; oy < oh; ++oy) {
      for (size_t ox = 0; ox < ow; ++ox) {
        double sum = bias ? bias[oc] : 0.0, mag = bias ? std::fabs(bias[oc]) : 0.0;
        for (size_t ic = 0; ic < g.in_channels; ++ic) {
          for (size_t kh = 0; kh < g.kernel_h; ++kh) {
            const long iy = static_cast<long>(oy + kh * g.dilation_h) - static_cast<long>(g.pad_top);
            if (iy < 0 || iy >= static_cast<long>(g.in_height)) continue;
            for (size_t kw = 0; kw < g.kernel_w; ++kw) {
              const long ix = static_cast<long>(ox + kw * g.dilation_w) - static_cast<long>(g.pad_left);
              if (ix < 0 || ix >= static_cast<long>(g.in_width)) continue;
              const double p = static_cast<double>(w[((oc * g.in_channels + ic) * g.kernel_h + kh) * g.kernel_w + kw]) *
                               x[(ic * g.in_height + iy) * g.in_width + ix];
              sum += p;
              mag += std::fabs(p);
            }
          }
        }
        if (relu && sum < 0.0) sum = 0.0;
        const size_t i = (oc * oh + oy) * ow + ox;
        (*y)[i] = sum;
        (*tol)[i] = 2e-6 * mag + 1e-30;
      }
    }
  }
}

std::string label(const kiln::DispatchTable& t, SparsePattern p, const Conv2dGeometry& g, float s, const char* what) {
  return std::string(kiln::isa_name(t.isa)) + " " + kiln::sparse_pattern_name(p) + " " + std::to_string(g.in_channels) +
         "x" + std::to_string(g.in_height) + "x" + std::to_string(g.in_width) + "->" + std::to_string(g.out_channels) +
         " k" + std::to_string(g.kernel_h) + "x" + std::to_string(g.kernel_w) + " pad" + std::to_string(g.pad_top) +
         std::to_string(g.pad_left) + std::to_string(g.pad_bottom) + std::to_string(g.pad_right) + " d" +
         std::to_string(g.dilation_h) + "x" + std::to_string(g.dilation_w) + " s=" + std::to_string(s) + " " + what;
}

// pool: null for none.
void test_case(const kiln::DispatchTable& t, const Conv2dGeometry& g, SparsePattern p, float s, bool bias_on, bool relu,
               const ConvMaxPool* pool, size_t batch, Rng& rng) {
  // Weighed as dense: the reference the case runs is.
  if (kiln_test::skip_under_qemu(static_cast<double>(batch) * g.out_channels * g.out_plane() * g.patch())) return;
  const size_t br = kiln::sparse_block_rows(p);
  const std::vector<float> w = masked_weights(g, br, s, rng);
  std::vector<float> bias(g.out_channels);
  for (auto& v : bias) v = rng.uniform();
  const float* b = bias_on ? bias.data() : nullptr;
  const SparseConvF32 conv(g, w.data(), b, relu, p);
  size_t nz = 0;
  for (float v : w) nz += v != 0.0f;
  check(conv.nonzeros() == nz, label(t, p, g, s, "non-zero count"));
  if (s >= 1.0f) check(conv.blocks() == 0, label(t, p, g, s, "all-zero layer stores no block"));

  const size_t in_image = g.in_channels * g.in_plane();
  const size_t out_plane = pool ? pool->out_h * pool->out_w : g.out_plane();
  const size_t out_image = g.out_channels * out_plane;
  Guarded<float> x(batch * in_image), y1(batch * out_image), y2(batch * out_image);
  x.randomize(rng);
  y1.fill(-12345.0f);
  y2.fill(-12345.0f);
  {
    Guarded<float> scratch(std::max<size_t>(1, conv.scratch_floats(batch, 1, pool)));
    scratch.fill(std::nanf(""));  // stale scratch must not leak into the output
    conv.run(t.f32_sparse_conv, x.data(), y1.data(), batch, pool, scratch.data(), 1);
  }
  {
    Guarded<float> scratch(std::max<size_t>(1, conv.scratch_floats(batch, 2, pool)));
    scratch.fill(std::nanf(""));
    conv.run(t.f32_sparse_conv, x.data(), y2.data(), batch, pool, scratch.data(), 2);
  }
  check(std::memcmp(y1.data(), y2.data(), batch * out_image * sizeof(float)) == 0,
        label(t, p, g, s, "1 and 2 threads agree"));
  bool ok = true;
  std::vector<double> ref, tol;
  for (size_t i = 0; i < batch && ok; ++i) {
    reference(g, w, b, relu, x.data() + i * in_image, &ref, &tol);
    for (size_t oc = 0; oc < g.out_channels && ok; ++oc) {
      const double* rp = ref.data() + oc * g.out_plane();
      const double* tp = tol.data() + oc * g.out_plane();
      const float* got = y1.data() + i * out_image + oc * out_plane;
      if (!pool) {
        for (size_t j = 0; j < out_plane; ++j) ok &= std::fabs(got[j] - rp[j]) <= tp[j];
        continue;
      }
      for (size_t py = 0; py < pool->out_h; ++py) {
        for (size_t px = 0; px < pool->out_w; ++px) {
          double best = -1e300, bound = 0;
          for (size_t kh = 0; kh < pool->kernel_h; ++kh) {
            for (size_t kw = 0; kw < pool->kernel_w; ++kw) {
              const size_t j = (py * pool->stride_h + kh * pool->dilation_h) * g.out_width + px * pool->stride_w +
                               kw * pool->dilation_w;
              best = std::max(best, rp[j]);
              bound = std::max(bound, tp[j]);
            }
          }
          ok &= std::fabs(got[py * pool->out_w + px] - best) <= bound;
        }
      }
    }
  }
  check(ok, label(t, p, g, s, pool ? "pooled equals the float64 reference" : "equals the float64 reference"));
}

// A max pool over g's output, or false when it does not fit.
bool make_pool(const Conv2dGeometry& g, size_t k, size_t stride, size_t dil, ConvMaxPool* pool) {
  pool->kernel_h = pool->kernel_w = k;
  pool->stride_h = pool->stride_w = stride;
  pool->dilation_h = pool->dilation_w = dil;
  const size_t reach = dil * (k - 1) + 1;
  if (g.out_height < reach || g.out_width < reach) return false;
  pool->out_h = (g.out_height - reach) / stride + 1;
  pool->out_w = (g.out_width - reach) / stride + 1;
  return kiln::conv_max_pool_valid(g, *pool);
}

bool refused(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

void test_refusals() {
  Conv2dGeometry g;
  make_geometry({2, 5, 5, 3, 3, 3, 0, 0, 0, 0, 1, 1}, &g);
  const std::vector<float> w(g.weight_size(), 1.0f);
  check(SparseConvF32::supports(g), "a plain 3x3 geometry is supported");
  Conv2dGeometry strided = g;
  strided.stride_h = 2;
  strided.out_height = 2;
  check(!SparseConvF32::supports(strided), "stride 2 is not supported");
  check(refused([&] { SparseConvF32(strided, w.data(), nullptr, false, SparsePattern::kUnstructured); }),
        "stride 2 refused");
  Conv2dGeometry grouped = g;
  grouped.in_channels = 2;
  grouped.out_channels = 4;
  grouped.groups = 2;
  check(refused([&] { SparseConvF32(grouped, w.data(), nullptr, false, SparsePattern::kUnstructured); }),
        "groups refused");
  Conv2dGeometry wrong = g;
  wrong.out_height = 4;
  check(refused([&] { SparseConvF32(wrong, w.data(), nullptr, false, SparsePattern::kUnstructured); }),
        "inconsistent output size refused");
  check(refused([&] { SparseConvF32(g, nullptr, nullptr, false, SparsePattern::kUnstructured); }), "null weights refused");
  check(refused([&] { SparseConvF32(g, w.data(), nullptr, false, static_cast<SparsePattern>(9)); }),
        "unknown pattern refused");
  const SparseConvF32 conv(g, w.data(), nullptr, false, SparsePattern::kUnstructured);
  ConvMaxPool pool;
  pool.kernel_h = pool.kernel_w = 4;  // larger than the 3x3 output
  pool.out_h = pool.out_w = 1;
  std::vector<float> x(2 * 25), y(3 * 9), scratch(conv.scratch_floats(1, 1) + 64);
  check(refused([&] { conv.run(x.data(), y.data(), 1, &pool, scratch.data(), 1); }), "invalid pool refused");
  check(refused([&] { conv.run(nullptr, y.data(), 1, nullptr, scratch.data(), 1); }), "null input refused");
}

}  // namespace

int main() {
  test_refusals();
  Rng rng(31);
  const Shape fixed[] = {
      {32, 13, 13, 64, 3, 3, 0, 0, 0, 0, 1, 1},  // SeedCNN MNIST conv2
      {32, 15, 15, 64, 3, 3, 0, 0, 0, 0, 1, 1},  // CIFAR conv2
      {3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1},      // odd channels and sides, padded
      {4, 12, 11, 7, 5, 5, 2, 1, 0, 2, 1, 1},    // 5x5, asymmetric pads
      {6, 9, 10, 9, 1, 1, 0, 0, 0, 0, 1, 1},     // pointwise
      {5, 13, 12, 6, 3, 3, 2, 2, 2, 2, 2, 2},    // dilation 2
      {3, 11, 17, 10, 3, 3, 0, 1, 1, 0, 1, 2},   // dilation 1 x 2
      {3, 70, 66, 10, 3, 3, 1, 1, 1, 1, 1, 1},   // plane of many tiles and spans
      {2, 3, 40, 3, 3, 3, 0, 0, 0, 0, 1, 1},     // one output row
      {17, 3, 3, 12, 3, 3, 0, 0, 0, 0, 1, 1},    // one output position
  };
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable* t = kiln::dispatch_for(isa);
    for (int k = 0; k < kiln::kSparseConvBlockKinds; ++k) {
      check(t->f32_sparse_conv.kernel[k] != nullptr, std::string(kiln::isa_name(isa)) + " sparse conv kernel set");
    }
    for (SparsePattern p : kPatterns) {
      for (const Shape& sh : fixed) {
        Conv2dGeometry g;
        check(make_geometry(sh, &g), "fixed shape is valid");
        ConvMaxPool pool2, pool3;
        const bool has2 = make_pool(g, 2, 2, 1, &pool2), has3 = make_pool(g, 3, 2, 1, &pool3);
        for (float s : kSparsities) {
          const size_t i = rng.below(8);
          const ConvMaxPool* pool = (i & 4) && has2 ? &pool2 : nullptr;
          test_case(*t, g, p, s, i & 1, i & 2, pool, 1 + rng.below(3), rng);
        }
        if (has2) test_case(*t, g, p, 0.9f, true, true, &pool2, 2, rng);
        if (has3) test_case(*t, g, p, 0.9f, true, false, &pool3, 1, rng);
      }
      for (int r = 0; r < 30; ++r) {
        Shape sh{1 + rng.below(9), 1 + rng.below(20), 1 + rng.below(20), 1 + rng.below(20), 1 + rng.below(5),
                 1 + rng.below(5), rng.below(3), rng.below(3), rng.below(3), rng.below(3), 1 + rng.below(2),
                 1 + rng.below(2)};
        Conv2dGeometry g;
        if (!make_geometry(sh, &g)) continue;
        ConvMaxPool pool;
        const size_t pk = 1 + rng.below(3), ps = 1 + rng.below(3), pd = 1 + rng.below(2);
        const bool pooled = rng.below(2) && make_pool(g, pk, ps, pd, &pool);
        test_case(*t, g, p, kSparsities[rng.below(5)], rng.below(2), rng.below(2), pooled ? &pool : nullptr,
                  1 + rng.below(3), rng);
      }
    }
  }
  return kiln_test::finish("sparse-conv-test: ");
}
