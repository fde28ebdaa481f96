// The active ISA switching under a plan (setIsa() from JavaScript while a job runs on another
// thread). Plans are built on one table and run on another, for every ordered pair of ISAs this
// CPU has: a path the plan chose that the run's table lacks (null entry) must fall back to one
// every ISA has (im2col + GEMM, the staged pool), never call a null kernel, and give the
// reference's values. Then the real race: one thread flips the ISA without pause while another
// runs the public entry points, which check a path and run it as two calls.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "common/dispatch.h"
#include "conv/winograd.h"
#include "kiln/conv.h"
#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/s8-conv.h"
#include "s8-conv/s8-small-conv.h"
#include "test-util.h"

namespace {

using kiln::Isa;
using kiln_test::check;
using kiln_test::Rng;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct ConvCase {
  const char* name;
  size_t batch, cin, h, w, cout, pad;
  size_t pool_k, pool_s;  // 0: no pool
};

// SeedCNN's layers: MNIST conv1 (small patch), conv2 (channels-in-lanes direct, Winograd), the
// CIFAR ones, and a 3x3/2 pool the small kernel stages.
const ConvCase kCases[] = {
    {"MNIST conv1 + pool", 3, 1, 28, 28, 32, 0, 2, 2},
    {"MNIST conv2 + pool", 3, 32, 13, 13, 64, 0, 2, 2},
    {"CIFAR conv1 + pool", 2, 3, 32, 32, 32, 0, 2, 2},
    {"CIFAR conv2 + pool", 2, 32, 15, 15, 64, 0, 2, 2},
    {"small patch, 3x3/2 pool", 2, 3, 12, 12, 16, 0, 3, 2},
    {"padded (GEMM only), pool", 2, 8, 9, 9, 16, 1, 2, 2},
    // ResNet's padded 3x3 layers, past the 8192 channel pairs Winograd once stopped at.
    {"ResNet 128x128 on 28x28", 1, 128, 28, 28, 128, 1, 2, 2},
    {"ResNet 256x256 on 14x14", 1, 256, 14, 14, 256, 1, 2, 2},
};

kiln::Conv2dGeometry geometry(const ConvCase& c) {
  kiln::Conv2dGeometry g;
  g.in_channels = c.cin;
  g.in_height = c.h;
  g.in_width = c.w;
  g.out_channels = c.cout;
  g.kernel_h = g.kernel_w = 3;
  g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = c.pad;
  g.out_height = c.h + 2 * c.pad - 2;
  g.out_width = c.w + 2 * c.pad - 2;
  return g;
}

kiln::ConvMaxPool pool_of(const kiln::Conv2dGeometry& g, const ConvCase& c) {
  kiln::ConvMaxPool p;
  p.kernel_h = p.kernel_w = c.pool_k;
  p.stride_h = p.stride_w = c.pool_s;
  p.out_h = (g.out_height - c.pool_k) / c.pool_s + 1;
  p.out_w = (g.out_width - c.pool_k) / c.pool_s + 1;
  return p;
}

// relu(conv + bias) in double, and its max pool.
struct Reference {
  std::vector<double> conv, pooled;
  std::vector<double> mag;  // sum |x * w| + |b| per conv output: the tolerance's scale
};

Reference reference(const kiln::Conv2dGeometry& g, const kiln::ConvMaxPool& p, size_t batch, const float* x,
                    const float* w, const float* b) {
  Reference r;
  const size_t plane = g.out_plane();
  r.conv.assign(batch * g.out_channels * plane, 0.0);
  r.mag.assign(r.conv.size(), 0.0);
  for (size_t n = 0; n < batch; ++n) {
    for (size_t o = 0; o < g.out_channels; ++o) {
      for (size_t oh = 0; oh < g.out_height; ++oh) {
        for (size_t ow = 0; ow < g.out_width; ++ow) {
          double s = b[o], m = std::fabs(b[o]);
          for (size_t c = 0; c < g.in_channels; ++c) {
            for (size_t kh = 0; kh < 3; ++kh) {
              for (size_t kw = 0; kw < 3; ++kw) {
                const ptrdiff_t ih = static_cast<ptrdiff_t>(oh + kh) - static_cast<ptrdiff_t>(g.pad_top);
                const ptrdiff_t iw = static_cast<ptrdiff_t>(ow + kw) - static_cast<ptrdiff_t>(g.pad_left);
                if (ih < 0 || iw < 0 || ih >= static_cast<ptrdiff_t>(g.in_height) ||
                    iw >= static_cast<ptrdiff_t>(g.in_width)) {
                  continue;
                }
                const double v = static_cast<double>(x[((n * g.in_channels + c) * g.in_height + ih) * g.in_width + iw]) *
                                 w[((o * g.in_channels + c) * 3 + kh) * 3 + kw];
                s += v;
                m += std::fabs(v);
              }
            }
          }
          const size_t at = (n * g.out_channels + o) * plane + oh * g.out_width + ow;
          r.conv[at] = s < 0 ? 0 : s;
          r.mag[at] = m;
        }
      }
    }
  }
  r.pooled.assign(batch * g.out_channels * p.out_h * p.out_w, 0.0);
  for (size_t q = 0; q < batch * g.out_channels; ++q) {
    for (size_t ph = 0; ph < p.out_h; ++ph) {
      for (size_t pw = 0; pw < p.out_w; ++pw) {
        double best = -1;
        for (size_t kh = 0; kh < p.kernel_h; ++kh) {
          for (size_t kw = 0; kw < p.kernel_w; ++kw) {
            best = std::max(best, r.conv[q * plane + (ph * p.stride_h + kh) * g.out_width + pw * p.stride_w + kw]);
          }
        }
        r.pooled[(q * p.out_h + ph) * p.out_w + pw] = best;
      }
    }
  }
  return r;
}

// |got - want| within `rel` of the conv's magnitude (every pooled value is one conv output; the
// largest magnitude in the image bounds it).
bool close(const float* got, const std::vector<double>& want, double scale, double rel) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (!(std::fabs(got[i] - want[i]) <= rel * scale + 1e-6)) return false;
  }
  return true;
}

struct Data {
  kiln::Conv2dGeometry g;
  kiln::ConvMaxPool pool;
  std::vector<float> x, w, b;
  Reference ref;
  double scale = 0;
};

Data make_data(const ConvCase& c) {
  Data d;
  d.g = geometry(c);
  d.pool = pool_of(d.g, c);
  Rng rng(c.cin * 131 + c.cout * 7 + c.h);
  d.x.resize(c.batch * d.g.in_channels * d.g.in_plane());
  d.w.resize(d.g.weight_size());
  d.b.resize(d.g.out_channels);
  for (float& v : d.x) v = rng.uniform();
  for (float& v : d.w) v = rng.uniform();
  for (float& v : d.b) v = rng.uniform();
  d.ref = reference(d.g, d.pool, c.batch, d.x.data(), d.w.data(), d.b.data());
  for (double m : d.ref.mag) d.scale = std::max(d.scale, m);
  return d;
}

std::string label(Isa from, Isa to, const char* name, const char* what) {
  return std::string(kiln::isa_name(from)) + " -> " + kiln::isa_name(to) + " " + name + ": " + what;
}

// Built (and the fused path checked) under `from`, run under `to`.
void test_conv_pair(const ConvCase& c, const Data& d, Isa from, Isa to) {
  kiln::set_active_isa(from);
  const kiln::Conv2dPlan plan(d.g, d.w.data(), d.b.data(), true);
  const bool fused = plan.can_fuse_max_pool();
  // Sized when the plan is built: any ISA may be active at run time.
  std::unique_ptr<kiln::WinogradConv> wino;
  if (kiln::winograd_fits(d.g)) wino = std::make_unique<kiln::WinogradConv>(d.g, d.w.data(), d.b.data(), 2);
  std::vector<float> scratch(std::max({plan.scratch_floats(c.batch), plan.max_pooled_scratch_floats(c.batch, d.pool),
                                       wino ? wino->scratch_floats(c.batch, 0, nullptr) : 0}),
                             kNaN);
  kiln::set_active_isa(to);

  std::vector<float> conv(d.ref.conv.size(), kNaN), pooled(d.ref.pooled.size(), kNaN);
  plan.run(d.x.data(), conv.data(), c.batch, scratch.data(), 0);
  check(close(conv.data(), d.ref.conv, d.scale, 1e-5), label(from, to, c.name, "run"));
  // The caller saw `fused` under `from` and calls run_max_pooled now: on `to` it must fuse or
  // stage, whichever `to` has.
  if (fused || plan.can_fuse_max_pool()) {
    plan.run_max_pooled(d.x.data(), pooled.data(), c.batch, d.pool, scratch.data(), 0);
    check(close(pooled.data(), d.ref.pooled, d.scale, 1e-5), label(from, to, c.name, "run_max_pooled"));
  }
  // Every table explicitly, the one the plan was built on included.
  for (Isa isa : {from, to}) {
    const kiln::DispatchTable& t = *kiln::dispatch_for(isa);
    std::fill(pooled.begin(), pooled.end(), kNaN);
    plan.run_max_pooled(t, d.x.data(), pooled.data(), c.batch, d.pool, scratch.data(), 1);
    check(close(pooled.data(), d.ref.pooled, d.scale, 1e-5), label(from, to, c.name, "run_max_pooled on a table"));
  }
  if (wino != nullptr) {
    const kiln::DispatchTable& t = kiln::dispatch();
    std::fill(conv.begin(), conv.end(), kNaN);
    const bool ran = wino->run(t, d.x.data(), conv.data(), c.batch, nullptr, true, scratch.data(), 0);
    check(ran == kiln::WinogradConv::available(t), label(from, to, c.name, "Winograd runs exactly where the table has it"));
    bool untouched = true;
    for (float v : conv) untouched = untouched && std::isnan(v);
    check(ran ? close(conv.data(), d.ref.conv, d.scale, 1e-4) : untouched,
          label(from, to, c.name, ran ? "Winograd" : "Winograd declines, writing nothing"));
    if (ran) {
      // One thread per image and one image over all threads (its tile rows split) agree bit for bit.
      std::vector<float> one(conv.size(), kNaN);
      (void)wino->run(t, d.x.data(), one.data(), c.batch, nullptr, true, scratch.data(), 1);
      check(std::memcmp(one.data(), conv.data(), conv.size() * sizeof(float)) == 0,
            label(from, to, c.name, "Winograd on 1 thread equals all threads"));
    }
  }
}

// The int8 small conv + pool: run() on a table without the kernel declines (the caller runs the
// GEMM); on one with it, equals S8Conv2dPlan + the u8 pool (s8-conv-test checks that bit for bit).
void test_s8_small(Isa to) {
  kiln::Conv2dGeometry g = geometry({"", 1, 1, 28, 28, 32, 0, 0, 0});
  const float w_scale = 0.01f;
  kiln::S8ConvQuant q;
  q.w_scale = &w_scale;
  q.x_scale = 0.02f;
  q.y_scale = 0.05f;
  q.x_zero_point = 3;
  q.y_zero_point = 5;
  q.y_min = 5;
  if (!kiln::S8SmallConvPool::fits(g, 13, 13, q)) {
    check(false, "SeedCNN MNIST conv1 takes the int8 small conv");
    return;
  }
  std::vector<int8_t> w(g.weight_size());
  Rng rng(5);
  for (int8_t& v : w) v = static_cast<int8_t>(static_cast<int>(rng.below(255)) - 127);
  std::vector<int32_t> bias(32, 7);
  const kiln::S8SmallConvPool small(g, w.data(), bias.data(), q);
  std::vector<uint8_t> in(2 * 28 * 28), out(2 * 13 * 13 * 32, 0xAB);
  for (uint8_t& v : in) v = static_cast<uint8_t>(rng.below(256));
  const kiln::DispatchTable& t = *kiln::dispatch_for(to);
  const bool ran = small.run(t, in.data(), out.data(), 2, 1);
  check(ran == kiln::S8SmallConvPool::available(t), std::string(kiln::isa_name(to)) + " int8 small conv runs exactly where the table has it");
  if (!ran) {
    bool untouched = true;
    for (uint8_t v : out) untouched = untouched && v == 0xAB;
    check(untouched, std::string(kiln::isa_name(to)) + " int8 small conv declines, writing nothing");
  }
}

// One thread flips the active ISA through every supported one without pause; this one runs the
// public entry points (can_fuse_max_pool() then run_max_pooled(), run()) meanwhile. Before the
// fix a flip between the check and the call jumped to a null kernel.
void test_race(const ConvCase& c, const Data& d, const std::vector<Isa>& isas) {
  kiln::set_active_isa(isas.back());
  const kiln::Conv2dPlan plan(d.g, d.w.data(), d.b.data(), true);
  std::vector<float> scratch(std::max(plan.scratch_floats(c.batch), plan.max_pooled_scratch_floats(c.batch, d.pool)));
  std::atomic<bool> stop{false};
  std::atomic<size_t> flips{0};
  std::thread flipper([&] {
    for (size_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      kiln::set_active_isa(isas[i % isas.size()]);
      flips.fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::vector<float> pooled(d.ref.pooled.size()), conv(d.ref.conv.size());
  bool ok_pooled = true, ok_conv = true;
  for (int i = 0; i < 200; ++i) {
    if (plan.can_fuse_max_pool()) {
      plan.run_max_pooled(d.x.data(), pooled.data(), c.batch, d.pool, scratch.data(), 1);
      ok_pooled = ok_pooled && close(pooled.data(), d.ref.pooled, d.scale, 1e-5);
    }
    plan.run(d.x.data(), conv.data(), c.batch, scratch.data(), 1);
    ok_conv = ok_conv && close(conv.data(), d.ref.conv, d.scale, 1e-5);
  }
  stop = true;
  flipper.join();
  check(ok_pooled && ok_conv, std::string("race ") + c.name + " (" + std::to_string(flips.load()) + " flips)");
}

}  // namespace

int main() {
  const Isa initial = kiln::active_isa();
  const std::vector<Isa> isas = kiln::supported_isas();
  for (const ConvCase& c : kCases) {
    const Data d = make_data(c);
    for (Isa from : isas) {
      for (Isa to : isas) test_conv_pair(c, d, from, to);
    }
    if (isas.size() > 1) test_race(c, d, isas);
  }
  for (Isa to : isas) test_s8_small(to);
  kiln::set_active_isa(initial);
  return kiln_test::finish("isa-switch-test: ");
}
