// int8 convolution, quantize/dequantize layout kernels and uint8 NHWC max-pool, without Node:
// every array (input, output, and the scratch sized by scratch_bytes alone) ends where an
// inaccessible page begins, so a read or write past its end crashes the test. Results are
// compared bit for bit with naive oracles here (int64 sums, then the quant/requantize.h
// epilogue), on every ISA level and the forced AVX-VNNI kernels, with 1 and 2 threads; outputs
// start as two different sentinels over two runs. Exit code 1 on any failure.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/s8-conv.h"
#include "kiln/thread-pool.h"
#include "quant/requantize.h"
#include "s8-conv/quantize-rows.h"
#include "common/dispatch.h"
#include "s8-conv/s8-pointwise-planes.h"
#include "s8-conv/s8-small-conv.h"

#include "check.h"
#include "s8-paths.h"
#include "test-util.h"

namespace {

using kiln_test::Rng;
using kiln_test::Guarded;

using kiln_test::check;
using kiln_test::g_failed;
using kiln_test::g_passed;



using kiln_test::all_paths;
using kiln_test::Path;
using kiln_test::path_name;
using kiln_test::select;

kiln::Conv2dGeometry geometry(size_t c, size_t h, size_t w, size_t o, size_t kh, size_t kw, size_t sh, size_t sw,
                              size_t pt, size_t pl, size_t pb, size_t pr, size_t dh, size_t dw, size_t groups) {
  kiln::Conv2dGeometry g;
  g.in_channels = c, g.in_height = h, g.in_width = w, g.out_channels = o;
  g.kernel_h = kh, g.kernel_w = kw, g.stride_h = sh, g.stride_w = sw;
  g.pad_top = pt, g.pad_left = pl, g.pad_bottom = pb, g.pad_right = pr;
  g.dilation_h = dh, g.dilation_w = dw, g.groups = groups;
  g.out_height = kiln::window_output_size(h, pt, pb, kh, sh, dh);
  g.out_width = kiln::window_output_size(w, pl, pr, kw, sw, dw);
  return g;
}

// The exact sums, NHWC out, OIHW weights.
std::vector<int32_t> oracle_sums(const kiln::Conv2dGeometry& g, size_t batch, const uint8_t* x, uint8_t zx,
                                 const int8_t* w, const int32_t* bias) {
  const size_t cg = g.in_channels_per_group(), og = g.out_channels_per_group();
  std::vector<int32_t> out(batch * g.out_plane() * g.out_channels);
  size_t i = 0;
  for (size_t b = 0; b < batch; ++b)
    for (size_t oh = 0; oh < g.out_height; ++oh)
      for (size_t ow = 0; ow < g.out_width; ++ow)
        for (size_t o = 0; o < g.out_channels; ++o) {
          int64_t acc = bias ? bias[o] : 0;
          const size_t grp = o / og;
          for (size_t ci = 0; ci < cg; ++ci)
            for (size_t y = 0; y < g.kernel_h; ++y) {
              const ptrdiff_t ih = ptrdiff_t(oh * g.stride_h + y * g.dilation_h) - ptrdiff_t(g.pad_top);
              if (ih < 0 || ih >= ptrdiff_t(g.in_height)) continue;
              for (size_t xk = 0; xk < g.kernel_w; ++xk) {
                const ptrdiff_t iw = ptrdiff_t(ow * g.stride_w + xk * g.dilation_w) - ptrdiff_t(g.pad_left);
                if (iw < 0 || iw >= ptrdiff_t(g.in_width)) continue;
                const int v = x[((b * g.in_height + size_t(ih)) * g.in_width + size_t(iw)) * g.in_channels + grp * cg + ci];
                acc += int64_t(v - zx) * w[((o * cg + ci) * g.kernel_h + y) * g.kernel_w + xk];
              }
            }
          out[i++] = static_cast<int32_t>(acc);
        }
  return out;
}

// A random int8 convolution problem: uint8 input (page-guarded), int8 weights, int32 bias,
// per-channel weight scales and quantization parameters with a fused ReLU. Built in place (q
// points into ws).
struct RandomConv {
  Guarded<uint8_t> x;
  std::vector<int8_t> w;
  std::vector<int32_t> bias;
  std::vector<float> ws;
  kiln::S8ConvQuant q;
  RandomConv(const kiln::Conv2dGeometry& g, size_t batch, Rng& rng)
      : x(batch * g.in_plane() * g.in_channels), w(g.weight_size()), bias(g.out_channels), ws(g.out_channels) {
    for (size_t i = 0; i < x.size(); ++i) x[i] = uint8_t(rng.next());
    for (auto& v : w) v = int8_t(rng.next());
    for (auto& v : bias) v = int32_t(rng.below(20001)) - 10000;
    for (auto& v : ws) v = rng.uniform(0.002f, 0.02f);
    q.x_zero_point = uint8_t(rng.next());
    q.w_scale = ws.data();
    q.w_scale_count = ws.size();
    q.x_scale = rng.uniform(0.005f, 0.05f);
    q.y_scale = q.x_scale * ws[0] * 40.0f * std::sqrt(float(g.patch()));
    q.y_zero_point = uint8_t(rng.next());
    q.y_min = q.y_zero_point;  // fused ReLU
  }
  RandomConv(const RandomConv&) = delete;
  RandomConv& operator=(const RandomConv&) = delete;
};

void test_conv(const kiln::Conv2dGeometry& g, size_t batch, Rng& rng, const std::string& label) {
  const size_t out_n = batch * g.out_plane() * g.out_channels;
  RandomConv r(g, batch, rng);
  auto& [x, w, bias, ws, q] = r;
  const std::vector<int32_t> sums = oracle_sums(g, batch, x.data(), q.x_zero_point, w.data(), bias.data());
  std::vector<uint8_t> want_u8(out_n);
  std::vector<float> want_f32(out_n);
  for (size_t i = 0; i < out_n; ++i) {
    const size_t o = i % g.out_channels;
    const float xw = q.x_scale * ws[o];
    const float lo = float(int(q.y_min) - q.y_zero_point), hi = float(int(q.y_max) - q.y_zero_point);
    want_u8[i] = kiln::requantize_u8(sums[i], xw / q.y_scale, q.y_zero_point, lo, hi);
    want_f32[i] = kiln::dequantize_f32(sums[i], xw, 0.0f);
  }
  for (const Path& p : all_paths()) {
    select(p);
    const kiln::S8Conv2dPlan plan_u8(g, w.data(), bias.data(), q, false);
    const kiln::S8Conv2dPlan plan_f32(g, w.data(), bias.data(), q, true);
    for (size_t threads : {size_t(1), size_t(2)}) {
      const std::string where = label + " on " + path_name(p) + ", " + std::to_string(threads) + " thread(s)";
      Guarded<uint8_t> scratch(plan_u8.scratch_bytes(batch, threads));
      Guarded<uint8_t> out(out_n);
      bool ok = true;
      for (uint8_t fill : {uint8_t(0x00), uint8_t(0xff)}) {
        std::memset(scratch.data(), 0xa5, scratch.size());
        std::memset(out.data(), fill, out_n);
        plan_u8.run(x.data(), out.data(), batch, scratch.data(), threads);
        for (size_t i = 0; i < out_n && ok; ++i) ok = out[i] == want_u8[i];
      }
      check(ok, where + ": uint8 output");
      Guarded<float> outf(out_n);
      for (size_t i = 0; i < out_n; ++i) outf[i] = std::nanf("");
      plan_f32.run(x.data(), outf.data(), batch, scratch.data(), threads);
      ok = true;
      for (size_t i = 0; i < out_n && ok; ++i) ok = std::memcmp(&outf[i], &want_f32[i], 4) == 0;
      check(ok, where + ": float output");
    }
  }
}

// The 1x1 convolution into float planes (s8-pointwise-planes.h): the portable kernel and the
// table's (where the ISA has one) against the oracle's sums, dequantized and laid out NCHW, with
// and without the ReLU, the output starting as NaN. The input ends at a guard page: a block that
// read a ragged pixel's last quad past the image would fault.
void test_planes(size_t c, size_t o, size_t h, size_t w, size_t batch, Rng& rng, const std::string& label) {
  const kiln::Conv2dGeometry g = geometry(c, h, w, o, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1);
  check(kiln::s8_planes_supported(g), label + ": supported");
  RandomConv r(g, batch, rng);
  auto& [x, wt, bias, ws, q] = r;
  const std::vector<int32_t> sums = oracle_sums(g, batch, x.data(), q.x_zero_point, wt.data(), bias.data());
  const size_t plane = g.out_plane(), out_n = batch * o * plane;
  std::vector<float> scale(o);
  for (size_t k = 0; k < o; ++k) scale[k] = q.multiplier(k, true);
  for (bool relu : {false, true}) {
    std::vector<float> want(out_n);
    for (size_t b = 0; b < batch; ++b)
      for (size_t p = 0; p < plane; ++p)
        for (size_t k = 0; k < o; ++k) {
          const float v = kiln::dequantize_f32(sums[(b * plane + p) * o + k], scale[k], 0.0f);
          want[(b * o + k) * plane + p] = relu && v < 0 ? 0.0f : v;
        }
    const kiln::S8PointwisePlanes planes(g, wt.data(), bias.data(), q, relu);
    std::vector<std::pair<std::string, kiln::S8PlanesRunFn>> kernels = {{"reference", kiln::s8_planes_run_reference}};
    for (const Path& path : all_paths()) {
      select(path);
      if (kiln::dispatch().s8_conv.planes_run) kernels.emplace_back(path_name(path), kiln::dispatch().s8_conv.planes_run);
    }
    for (const auto& [name, fn] : kernels) {
      for (size_t threads : {size_t(1), size_t(2)}) {
        Guarded<float> out(out_n);
        for (size_t i = 0; i < out_n; ++i) out[i] = std::nanf("");
        planes.run(fn, x.data(), out.data(), batch, plane, threads);
        check(std::memcmp(out.data(), want.data(), out_n * 4) == 0,
              label + (relu ? ", relu" : "") + " on " + name + ", " + std::to_string(threads) + " thread(s)");
      }
    }
  }
}

// QLinearAdd rows of every table on all 65,536 (a, b) code pairs, against the definition with a
// float32 division: parameter sets where multiplying by 1 / y_scale instead would round a pair
// the other way (the first two, found by search; about one random set in seven has such a pair:
// a kernel that multiplies must catch them), random ones, a y_scale of 3, a huge and a subnormal
// one.
void test_add_all_pairs(Rng& rng) {
  struct Set {
    float as, bs, ys;
    int32_t az, bz;
  };
  std::vector<Set> sets = {{0.10285250097513199f, 0.19014227390289307f, 0.04752708598971367f, 210, 242},
                           {0.16813641786575317f, 0.10238967835903168f, 0.15571221709251404f, 251, 192},
                           {0.5f, 0.25f, 3.0f, 128, 3},
                           {0.01f, 0.02f, 1e30f, 0, 255},
                           {0.01f, 0.02f, 1e-40f, 7, 9}};
  for (int i = 0; i < 12; ++i) {
    sets.push_back({rng.uniform(0.001f, 0.2f), rng.uniform(0.001f, 0.2f), rng.uniform(0.005f, 0.3f), int32_t(rng.below(256)),
                    int32_t(rng.below(256))});
  }
  const size_t n = 65536;
  Guarded<uint8_t> a(n), b(n), y(n);
  for (size_t i = 0; i < n; ++i) a[i] = uint8_t(i >> 8), b[i] = uint8_t(i);
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable& t = *kiln::dispatch_for(isa);
    size_t bad = 0;
    for (size_t k = 0; k < sets.size(); ++k) {
      const kiln::U8AddParams p =
          kiln::u8_add_params(sets[k].as, sets[k].az, sets[k].bs, sets[k].bz, sets[k].ys, int32_t(k * 37 % 256), k % 2 == 1);
      // The ratios rounded once from the scales (in double, then float: the correctly rounded
      // quotient), capped at 1e36 (y_scale 1e-40 below).
      const float ar = std::fmin(float(double(sets[k].as) / sets[k].ys), 1e36f);
      const float br = std::fmin(float(double(sets[k].bs) / sets[k].ys), 1e36f);
      const float y_min = k % 2 ? float(k * 37 % 256) : 0.0f;
      std::memset(y.data(), 0xcd, n);
      t.s8_conv.add_u8_row(a.data(), b.data(), y.data(), n, p);
      for (size_t i = 0; i < n; ++i) {
        const float ta = float(double(ar) * (int(a[i]) - sets[k].az));
        const float tb = float(double(br) * (int(b[i]) - sets[k].bz));
        volatile float real = ta + tb;
        const float q = std::nearbyint(real) + float(k * 37 % 256);
        bad += y[i] != uint8_t(q < y_min ? y_min : q > 255.0f ? 255.0f : q);
      }
    }
    check(bad == 0, std::string("add_u8_row on all code pairs, ") + kiln::isa_name(isa) + ": " + std::to_string(bad) + " wrong");
  }
}

// Quantize rows of every table at the rounding boundaries, where a quotient one ulp off picks the
// other code: inputs a few ulps around (k + 1/2) * scale, for scales over 12 decades and at the
// edges of float32's range. A row that multiplied by the reciprocal instead of dividing got 1.4%
// of them wrong (tried: with one FMA correction of the product it got them right, but ran slower
// than vdivps on Zen 5: QLinearAdd over ResNet-50 at batch 16 8.3 -> 11.7 ms).
void test_quantize_ties(Rng& rng) {
  const size_t n = 4099;
  Guarded<float> x(n);
  Guarded<uint8_t> q(n);
  std::vector<float> scales = {0x1p-70f, 0x1p70f, 0x1p-64f, 0x1p64f, 1.0f / 255, 0.0573743f};
  for (int i = 0; i < 60; ++i) scales.push_back(std::pow(10.0f, rng.uniform(-8.0f, 4.0f)));
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable& t = *kiln::dispatch_for(isa);
    size_t bad = 0;
    for (float scale : scales) {
      kiln::QuantizeParams p;
      p.scale = scale;
      p.zero_point = int32_t(rng.below(256));
      p.lo = -float(p.zero_point);
      p.hi = 255.0f - float(p.zero_point);
      for (size_t i = 0; i < n; ++i) {
        float v = (float(int32_t(rng.below(600)) - 300) + 0.5f) * scale;
        for (int step = int(rng.below(7)) - 3; step != 0; step += step > 0 ? -1 : 1) v = std::nextafter(v, step > 0 ? INFINITY : -INFINITY);
        x[i] = v;
      }
      std::memset(q.data(), 0xcd, n);
      t.s8_conv.quantize_u8_row(x.data(), q.data(), n, p);
      for (size_t i = 0; i < n; ++i) bad += q[i] != kiln::quantize_u8_one(x[i], p);
    }
    check(bad == 0, std::string("quantize_u8_row at rounding ties, ") + kiln::isa_name(isa) + ": " + std::to_string(bad) + " wrong");
  }
}

// QLinearAdd rows of every table against the element-wise definition: odd lengths, saturating
// scales, the fused ReLU, and y over a (in place, as the plan runs it).
void test_add(Rng& rng) {
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable& t = *kiln::dispatch_for(isa);
    bool ok = true;
    for (int trial = 0; trial < 40; ++trial) {
      const size_t n = 1 + rng.below(200);
      const float as = rng.uniform(0.001f, 0.2f), bs = rng.uniform(0.001f, 0.2f);
      const float ys = trial % 5 == 0 ? rng.uniform(1e-5f, 1e-4f) : rng.uniform(0.005f, 0.3f);  // some saturate
      const int32_t az = int32_t(rng.below(256)), bz = int32_t(rng.below(256)), yz = int32_t(rng.below(256));
      const kiln::U8AddParams p = kiln::u8_add_params(as, az, bs, bz, ys, yz, trial % 2 == 1);
      const float ar = std::fmin(float(double(as) / ys), 1e36f), br = std::fmin(float(double(bs) / ys), 1e36f);
      const float y_min = trial % 2 ? float(yz) : 0.0f;
      Guarded<uint8_t> a(n), b(n), y(n);
      for (size_t i = 0; i < n; ++i) a[i] = uint8_t(rng.next()), b[i] = uint8_t(rng.next());
      // The oracle: each product exact in double, rounded once to float, summed in float (as
      // the int8 reference does it), independent of the kernels' code.
      std::vector<uint8_t> want(n);
      for (size_t i = 0; i < n; ++i) {
        const float ta = float(double(ar) * (int(a[i]) - az));
        const float tb = float(double(br) * (int(b[i]) - bz));
        volatile float real = ta + tb;
        const float q = std::nearbyint(real) + float(yz);
        want[i] = uint8_t(q < y_min ? y_min : q > 255.0f ? 255.0f : q);
      }
      std::memset(y.data(), 0xcd, n);
      t.s8_conv.add_u8_row(a.data(), b.data(), y.data(), n, p);
      for (size_t i = 0; i < n; ++i) ok = ok && y[i] == want[i];
      t.s8_conv.add_u8_row(a.data(), b.data(), a.data(), n, p);  // in place
      for (size_t i = 0; i < n; ++i) ok = ok && a[i] == want[i];
    }
    check(ok, std::string("add_u8_row on ") + kiln::isa_name(isa));
  }
}

// QLinearMul rows of every table against the scalar definition: odd lengths, one gate value or
// one per element, saturating scales, y over a (in place).
void test_mul(Rng& rng) {
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable& t = *kiln::dispatch_for(isa);
    bool ok = true;
    for (int trial = 0; trial < 40; ++trial) {
      const size_t n = 1 + rng.below(200);
      kiln::U8MulParams p;
      p.a_scale = rng.uniform(0.001f, 0.2f);
      p.y_scale = trial % 5 == 0 ? rng.uniform(1e-6f, 1e-5f) : rng.uniform(0.0005f, 0.05f);  // some saturate
      p.a_zero_point = int32_t(rng.below(256));
      p.y_zero_point = float(rng.below(256));
      const bool one = trial % 2 == 0;
      Guarded<uint8_t> a(n), y(n);
      Guarded<float> tb(one ? 1 : n);
      for (size_t i = 0; i < n; ++i) a[i] = uint8_t(rng.next());
      for (size_t i = 0; i < tb.size(); ++i) tb[i] = rng.uniform(-2.0f, 2.0f);
      std::vector<uint8_t> want(n);
      for (size_t i = 0; i < n; ++i) {
        const float ta = p.a_scale * float(int32_t(a[i]) - p.a_zero_point);
        const float q = std::nearbyint(ta * tb[one ? 0 : i] / p.y_scale) + p.y_zero_point;
        want[i] = uint8_t(q < 0.0f ? 0.0f : q > 255.0f ? 255.0f : q);
      }
      std::memset(y.data(), 0xcd, n);
      t.s8_conv.mul_u8_row(a.data(), tb.data(), one, y.data(), n, p);
      for (size_t i = 0; i < n; ++i) ok = ok && y[i] == want[i];
      t.s8_conv.mul_u8_row(a.data(), tb.data(), one, a.data(), n, p);  // in place
      for (size_t i = 0; i < n; ++i) ok = ok && a[i] == want[i];
    }
    check(ok, std::string("mul_u8_row on ") + kiln::isa_name(isa));
  }
}

// QLinearLookup rows of every table against table[x]: random tables, every code present, odd
// lengths around the vector widths, guarded buffers, and y over x (in place, as the plan runs it).
void test_lookup(Rng& rng) {
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable& t = *kiln::dispatch_for(isa);
    bool ok = true;
    for (size_t n : {size_t(1), size_t(7), size_t(8), size_t(31), size_t(32), size_t(33), size_t(63), size_t(64), size_t(65), size_t(256), size_t(1000)}) {
      uint8_t table[256];
      for (auto& v : table) v = uint8_t(rng.next());
      Guarded<uint8_t> x(n), y(n);
      for (size_t i = 0; i < n; ++i) x[i] = n >= 256 && i < 256 ? uint8_t(i) : uint8_t(rng.next());
      std::memset(y.data(), 0xcd, n);
      t.s8_conv.lookup_u8_row(table, x.data(), y.data(), n);
      for (size_t i = 0; i < n; ++i) ok = ok && y[i] == table[x[i]];
      std::vector<uint8_t> want(n);
      for (size_t i = 0; i < n; ++i) want[i] = table[x[i]];
      t.s8_conv.lookup_u8_row(table, x.data(), x.data(), n);  // in place
      for (size_t i = 0; i < n; ++i) ok = ok && x[i] == want[i];
    }
    check(ok, std::string("lookup_u8_row on ") + kiln::isa_name(isa));
  }
}

// The byte transpose kernel of every table against the definition, on odd shapes and strides;
// 2-4 rows into dense pixels (the interleave of an RGB(A) image) and with a wider stride.
void test_transpose(Rng& rng) {
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable& t = *kiln::dispatch_for(isa);
    bool ok = true;
    for (size_t rows : {size_t(1), size_t(2), size_t(3), size_t(4), size_t(15), size_t(16), size_t(17), size_t(40)}) {
      for (size_t cols : {size_t(1), size_t(16), size_t(31), size_t(48), size_t(50), size_t(259)}) {
        for (bool dense : {true, false}) {
          const size_t ss = cols + rng.below(3), ds = dense ? rows : rows + 1 + rng.below(2);
          Guarded<uint8_t> src(rows * ss), dst(cols * ds);
          for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(rng.next());
          std::memset(dst.data(), 0xee, dst.size());
          t.s8_conv.transpose_u8(src.data(), ss, dst.data(), ds, rows, cols);
          for (size_t j = 0; j < cols; ++j)
            for (size_t i = 0; i < ds; ++i) ok = ok && dst[j * ds + i] == (i < rows ? src[i * ss + j] : 0xee);
        }
      }
    }
    check(ok, std::string("transpose_u8 on ") + kiln::isa_name(isa));
  }
}

void test_layout(size_t batch, size_t channels, size_t plane, Rng& rng) {
  const size_t n = batch * channels * plane;
  Guarded<float> x(n);
  const float specials[] = {std::nanf(""), INFINITY, -INFINITY, -0.0f, 3e38f, -3e38f};
  for (size_t i = 0; i < n; ++i) x[i] = rng.below(8) == 0 ? specials[rng.below(6)] : rng.uniform(-400.0f, 400.0f) * 0.03125f;
  const float scale = rng.below(2) ? 0.03125f : rng.uniform(0.01f, 0.2f);
  const uint8_t zp = uint8_t(rng.next());
  kiln::QuantizeParams qp;
  qp.scale = scale;
  qp.zero_point = zp;
  qp.lo = -float(zp);
  qp.hi = 255.0f - float(zp);
  std::vector<uint8_t> want_q(n);
  std::vector<float> want_d(n);
  for (size_t b = 0; b < batch; ++b)
    for (size_t c = 0; c < channels; ++c)
      for (size_t p = 0; p < plane; ++p) {
        const size_t nchw = (b * channels + c) * plane + p, nhwc = (b * plane + p) * channels + c;
        want_q[nhwc] = kiln::quantize_u8_one(x[nchw], qp);
      }
  for (size_t b = 0; b < batch; ++b)
    for (size_t c = 0; c < channels; ++c)
      for (size_t p = 0; p < plane; ++p) {
        const size_t nchw = (b * channels + c) * plane + p, nhwc = (b * plane + p) * channels + c;
        want_d[nchw] = kiln::dequantize_u8_one(want_q[nhwc], scale, zp);
      }
  const std::string label = "layout " + std::to_string(batch) + "x" + std::to_string(channels) + "x" + std::to_string(plane);
  for (const Path& p : all_paths()) {
    if (p.avxvnni) continue;
    select(p);
    for (size_t threads : {size_t(1), size_t(2)}) {
      Guarded<uint8_t> q(n);
      bool ok = true;
      for (uint8_t fill : {uint8_t(0x00), uint8_t(0xff)}) {
        std::memset(q.data(), fill, n);
        kiln::quantize_u8_nchw_to_nhwc(x.data(), q.data(), batch, channels, plane, scale, zp, threads);
        for (size_t i = 0; i < n && ok; ++i) ok = q[i] == want_q[i];
      }
      check(ok, label + " quantize on " + path_name(p));
      Guarded<float> d(n);
      for (size_t i = 0; i < n; ++i) d[i] = std::nanf("");
      kiln::dequantize_u8_nhwc_to_nchw(q.data(), d.data(), batch, channels, plane, scale, zp, threads);
      ok = true;
      for (size_t i = 0; i < n && ok; ++i) ok = std::memcmp(&d[i], &want_d[i], 4) == 0;
      check(ok, label + " dequantize on " + path_name(p));
    }
  }
}

// extra: output rows and columns past the floor-mode count (ceil mode: windows that run past the
// image's bottom and right edges); d: the dilation.
void test_max_pool(size_t batch, size_t channels, size_t h, size_t w, size_t k, size_t s, size_t pad, Rng& rng,
                   size_t extra = 0, size_t d = 1) {
  kiln::Pool2dGeometry g;
  g.in_height = h, g.in_width = w, g.kernel_h = g.kernel_w = k, g.stride_h = g.stride_w = s;
  g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = pad;
  g.dilation_h = g.dilation_w = d;
  g.out_height = kiln::window_output_size(h, pad, pad, k, s, d) + extra;
  g.out_width = kiln::window_output_size(w, pad, pad, k, s, d) + extra;
  const size_t in_n = batch * h * w * channels, out_n = batch * g.out_plane() * channels;
  Guarded<uint8_t> x(in_n);
  for (size_t i = 0; i < in_n; ++i) x[i] = uint8_t(rng.next());
  std::vector<uint8_t> want(out_n, 0);
  for (size_t b = 0; b < batch; ++b)
    for (size_t oh = 0; oh < g.out_height; ++oh)
      for (size_t ow = 0; ow < g.out_width; ++ow)
        for (size_t c = 0; c < channels; ++c) {
          uint8_t best = 0;
          for (size_t y = 0; y < k; ++y)
            for (size_t xk = 0; xk < k; ++xk) {
              const ptrdiff_t ih = ptrdiff_t(oh * s + y * d) - ptrdiff_t(pad), iw = ptrdiff_t(ow * s + xk * d) - ptrdiff_t(pad);
              if (ih < 0 || iw < 0 || ih >= ptrdiff_t(h) || iw >= ptrdiff_t(w)) continue;
              best = std::max(best, x[((b * h + size_t(ih)) * w + size_t(iw)) * channels + c]);
            }
          want[((b * g.out_height + oh) * g.out_width + ow) * channels + c] = best;
        }
  for (const Path& p : all_paths()) {
    if (p.avxvnni) continue;
    select(p);
    Guarded<uint8_t> out(out_n);
    bool ok = true;
    for (uint8_t fill : {uint8_t(0x00), uint8_t(0xff)}) {
      std::memset(out.data(), fill, out_n);
      kiln::max_pool2d_u8_nhwc(g, batch, channels, x.data(), out.data(), 2);
      for (size_t i = 0; i < out_n && ok; ++i) ok = out[i] == want[i];
    }
    check(ok, "max pool c=" + std::to_string(channels) + " " + std::to_string(h) + "x" + std::to_string(w) + " k" +
                  std::to_string(k) + " s" + std::to_string(s) + " p" + std::to_string(pad) + " +" + std::to_string(extra) +
                  " d" + std::to_string(d) + " on " + path_name(p));
  }
}

// The int8 small conv + 2x2/2 pool (AVX-512 VNNI only), padded or not: against the oracle's
// sums, requantized, then pooled, bit for bit; page-guarded input and output, two sentinels.
void test_small_pool(const kiln::Conv2dGeometry& g, size_t batch, Rng& rng, const std::string& label) {
  const size_t ph = g.out_height / 2, pw = g.out_width / 2;
  const size_t out_n = batch * ph * pw * g.out_channels;
  RandomConv r(g, batch, rng);
  auto& [x, w, bias, ws, q] = r;
  if (!kiln::S8SmallConvPool::fits(g, ph, pw, q)) {
    check(false, label + ": takes the int8 small conv");
    return;
  }
  const std::vector<int32_t> sums = oracle_sums(g, batch, x.data(), q.x_zero_point, w.data(), bias.data());
  std::vector<uint8_t> want(out_n);
  const float lo = float(int(q.y_min) - q.y_zero_point), hi = float(int(q.y_max) - q.y_zero_point);
  auto conv_at = [&](size_t b, size_t oh, size_t ow, size_t o) {
    const size_t i = ((b * g.out_height + oh) * g.out_width + ow) * g.out_channels + o;
    return kiln::requantize_u8(sums[i], q.x_scale * ws[o] / q.y_scale, q.y_zero_point, lo, hi);
  };
  size_t k = 0;
  for (size_t b = 0; b < batch; ++b)
    for (size_t i = 0; i < ph; ++i)
      for (size_t j = 0; j < pw; ++j)
        for (size_t o = 0; o < g.out_channels; ++o) {
          uint8_t m = 0;
          for (size_t a = 0; a < 4; ++a) m = std::max(m, conv_at(b, 2 * i + a / 2, 2 * j + a % 2, o));
          want[k++] = m;
        }
  const kiln::S8SmallConvPool small(g, w.data(), bias.data(), q);
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable& t = *kiln::dispatch_for(isa);
    if (!kiln::S8SmallConvPool::available(t)) continue;
    for (size_t threads : {size_t(1), size_t(2)}) {
      Guarded<uint8_t> out(out_n);
      bool ok = true;
      for (uint8_t fill : {uint8_t(0x00), uint8_t(0xff)}) {
        std::memset(out.data(), fill, out_n);
        ok = ok && small.run(t, x.data(), out.data(), batch, threads);
        for (size_t i = 0; i < out_n && ok; ++i) ok = out[i] == want[i];
      }
      check(ok, label + " on " + kiln::isa_name(isa) + ", " + std::to_string(threads) + " thread(s): small conv + pool");
    }
  }
}

}  // namespace

int main() {
  kiln::set_num_threads(2);
  Rng rng(42);
  {
    Rng ties(7);  // its own stream: the cases below keep the inputs they had before it
    test_quantize_ties(ties);
  }
  // SeedCNN's two convolutions, then odd shapes: padding, strides, dilation, groups, depthwise,
  // 1x1 (im2col-free), K not a multiple of 4.
  test_conv(geometry(1, 28, 28, 32, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1), 3, rng, "conv1");
  test_conv(geometry(32, 13, 13, 64, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1), 8, rng, "conv2 batch 8");
  test_conv(geometry(3, 7, 9, 5, 3, 2, 2, 1, 1, 0, 2, 1, 1, 2, 1), 2, rng, "padded strided dilated");
  test_conv(geometry(1, 5, 17, 3, 1, 3, 1, 1, 0, 1, 0, 1, 1, 1, 1), 1, rng, "Cin 1, 1x3 padded");
  test_conv(geometry(6, 6, 5, 9, 2, 3, 1, 2, 1, 1, 1, 0, 2, 1, 3), 2, rng, "groups 3");
  test_conv(geometry(8, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8), 2, rng, "depthwise");
  test_conv(geometry(37, 8, 7, 37, 3, 2, 2, 1, 1, 0, 2, 1, 2, 1, 37), 2, rng, "depthwise odd");
  test_conv(geometry(64, 16, 16, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 64), 8, rng, "depthwise over threads");
  test_conv(geometry(4, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4), 1, rng, "depthwise multiplier 2 (GEMMs)");
  test_conv(geometry(48, 11, 10, 48, 5, 5, 2, 2, 2, 1, 2, 2, 1, 1, 48), 2, rng, "depthwise 5x5/2, 48 channels (32 + 16 lanes)");
  test_conv(geometry(144, 14, 14, 144, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 144), 1, rng, "depthwise MobileNetV2 144 channels");
  // VNNI's 64-channel quad blocks, then pairs, 32/16 blocks and the scalar tail: 9 taps (the last
  // quad one tap), 25 and 49 (one), 6 (two), stride 2 and dilation.
  test_conv(geometry(96, 9, 9, 96, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 96), 2, rng, "depthwise 96 channels (quads + pairs)");
  test_conv(geometry(200, 8, 7, 200, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 200), 2, rng, "depthwise 5x5, 200 channels (3 quad blocks + 8)");
  test_conv(geometry(64, 12, 12, 64, 7, 7, 1, 1, 3, 3, 3, 3, 1, 1, 64), 1, rng, "depthwise 7x7, 64 channels");
  test_conv(geometry(152, 13, 11, 152, 3, 2, 2, 2, 1, 0, 1, 1, 2, 1, 152), 2, rng, "depthwise 3x2/2 dilated, 152 channels (2 quads + 16 + 8)");
  // The half block (32 channels left after the full ones) on pairs of pixels: even and odd
  // interior runs, and a tail after it.
  test_conv(geometry(32, 12, 13, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32), 2, rng, "depthwise 32 channels (half block)");
  // MobileNetV3's 16 channels (the quarter block on four pixels; 9 interior pixels per row: two
  // groups and one alone), 72 and 120 (a masked block of the last 8 on AVX-512).
  test_conv(geometry(16, 10, 11, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16), 2, rng, "depthwise 16 channels (quarter block)");
  test_conv(geometry(72, 11, 12, 72, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 72), 2, rng, "depthwise 72 channels (quad block + 8)");
  test_conv(geometry(120, 9, 9, 120, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 120), 1, rng, "depthwise 5x5, 120 channels (quad + half + 16 + 8)");
  test_conv(geometry(500, 9, 8, 500, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 500), 1, rng, "depthwise 5x5/2, 500 channels (7 quads + half + 20)");
  test_conv(geometry(19, 5, 3, 23, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1), 2, rng, "1x1");
  test_conv(geometry(5, 4, 4, 7, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1), 1, rng, "1x1 padded");
  test_conv(geometry(128, 6, 6, 512, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1), 1, rng, "few rows, many columns");
  // The GEMM reading its input through row pointers (kernel rows of a multiple of 4 bytes, at
  // least 16): the padded SeedCNN conv2 and ResNet shapes, edges on both sides and both padding
  // rows, pads wider than the kernel's reach, stride 2, vertical dilation, outputs one and two
  // pixels wide (every pixel an edge), kernel rows of exactly 16 bytes, batches whose rows cross
  // images and the 128 KiB blocks, and a channel count whose rows are not a multiple of 4 (im2col).
  test_conv(geometry(32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 12, rng, "indirect: padded SeedCNN conv2, batch 12");
  test_conv(geometry(64, 15, 13, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1), 2, rng, "indirect: 3x3/2 padded");
  test_conv(geometry(12, 7, 9, 21, 3, 3, 1, 1, 2, 3, 0, 4, 2, 1, 1), 3, rng, "indirect: asymmetric pads past the kernel, dilation_h 2");
  test_conv(geometry(8, 5, 1, 17, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1), 2, rng, "indirect: one column, every pixel an edge");
  test_conv(geometry(16, 6, 2, 33, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 1), 3, rng, "indirect: two columns, stride_w 2");
  test_conv(geometry(4, 9, 11, 70, 5, 4, 1, 1, 2, 2, 2, 1, 1, 1, 1), 2, rng, "indirect: 16-byte kernel rows, 5x4");
  test_conv(geometry(64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 1, rng, "indirect: ResNet-18 layer1");
  test_conv(geometry(256, 14, 14, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 1, rng, "indirect: ResNet 256 channels");
  // Grouped convolutions of 8 output channels per group (the direct kernel on AVX-512 VNNI, a
  // GEMM per group elsewhere): RegNetY-400MF's (group width 8, strides 2 and 1), 4 and 12 input
  // channels per group, 5x5 with asymmetric padding and dilation, one-pixel-wide outputs, rows
  // over 2 threads, pixel blocks of 8 with 1-7 left over.
  test_conv(geometry(48, 15, 15, 48, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 6), 2, rng, "grouped: RegNet 48 g6 3x3/2");
  test_conv(geometry(104, 14, 14, 104, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 13), 2, rng, "grouped: RegNet 104 g13 3x3");
  test_conv(geometry(440, 7, 7, 440, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 55), 1, rng, "grouped: RegNet 440 g55 3x3");
  test_conv(geometry(12, 9, 11, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3), 3, rng, "grouped: 4 in / 8 out per group");
  test_conv(geometry(36, 10, 9, 24, 5, 5, 1, 2, 3, 1, 2, 2, 2, 1, 3), 2, rng, "grouped: 12 in per group, 5x5, pads, dilation 2x1");
  test_conv(geometry(16, 6, 1, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2), 2, rng, "grouped: one column");
  test_conv(geometry(64, 40, 23, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8), 1, rng, "grouped: rows over threads, 23 columns");
  test_conv(geometry(10, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2), 1, rng, "grouped: 5 in per group (GEMM per group)");
  test_conv(geometry(7, 8, 8, 9, 3, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1), 2, rng, "kernel rows of 28 bytes, 7 channels");
  // RGB stems: im2col's fixed-size runs of 21, 15 and 33 bytes (7, 5 and 11 taps of 3 channels),
  // interior columns and padded edges.
  test_conv(geometry(3, 29, 27, 16, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1), 2, rng, "RGB stem 7x7/2, 21-byte rows");
  test_conv(geometry(3, 19, 21, 24, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 1), 2, rng, "RGB stem 5x5/2, 15-byte rows");
  test_conv(geometry(3, 35, 31, 8, 11, 11, 4, 4, 2, 2, 2, 2, 1, 1, 1), 1, rng, "RGB stem 11x11/4, 33-byte rows");
  test_conv(geometry(5, 8, 8, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 2, rng, "kernel rows of 15 bytes (im2col)");
  // The 1x1 into float planes: DetHead's head (32 -> 39 on 56x56: whole 16-pixel blocks, a
  // partial channel block), one quad and ragged quads (3, 5, 63 channels), the most channels (64),
  // one output channel, planes of 1, 15, 17 and 257 pixels (a partial block, a task boundary).
  test_planes(32, 39, 56, 56, 2, rng, "planes: DetHead head 32 -> 39, 56x56");
  test_planes(3, 8, 5, 3, 3, rng, "planes: 3 channels, 15 pixels");
  test_planes(5, 17, 17, 1, 2, rng, "planes: 5 channels, 17 pixels");
  test_planes(63, 9, 1, 1, 3, rng, "planes: 63 channels, 1 pixel");
  test_planes(64, 1, 16, 16, 1, rng, "planes: 64 channels -> 1");
  test_planes(4, 40, 1, 257, 2, rng, "planes: 257 pixels");
  test_planes(13, 24, 20, 20, 1, rng, "planes: 13 channels, 20x20");
  for (size_t c : {size_t(1), size_t(2), size_t(3), size_t(4), size_t(32)}) test_layout(2, c, 131, rng);
  test_layout(2, 3, 700, rng);  // several 256-pixel tiles and a partial one
  test_layout(3, 13, 1, rng);
  test_layout(2, 7, 3000, rng);
  // Past 4 channels the byte transpose: whole 16x16 blocks and both edges.
  test_layout(2, 64, 300, rng);
  test_layout(1, 130, 37, rng);
  test_layout(2, 256, 49, rng);
  test_transpose(rng);
  test_add(rng);
  test_add_all_pairs(rng);
  test_lookup(rng);
  test_mul(rng);
  for (size_t c : {size_t(1), size_t(31), size_t(32), size_t(33), size_t(64), size_t(65), size_t(130)}) {
    test_max_pool(2, c, 7, 6, 3, 2, 1, rng);
  }
  test_max_pool(2, 32, 11, 11, 2, 2, 0, rng);
  // The windows of real networks, whose inner columns run as one stretch per row: SqueezeNet's
  // 3x3/2 unpadded pools (55x55 over 64 channels, ceil mode that adds no column), GoogLeNet's
  // ceil-mode 3x3/2 (a last window past the edge) and its 3x3/1 padded branch pools, ResNet's
  // 3x3/2 padded; then a wider window than the image, dilation, and 1x1.
  test_max_pool(2, 64, 55, 55, 3, 2, 0, rng);
  test_max_pool(1, 128, 27, 27, 3, 2, 0, rng, 1);
  test_max_pool(2, 64, 12, 12, 3, 2, 0, rng, 1);
  test_max_pool(2, 192, 14, 14, 3, 1, 1, rng);
  test_max_pool(2, 64, 14, 13, 3, 2, 1, rng);
  test_max_pool(1, 70, 9, 10, 3, 1, 1, rng, 2);
  test_max_pool(1, 17, 3, 4, 5, 1, 2, rng);
  test_max_pool(2, 33, 13, 11, 3, 2, 2, rng, 0, 2);
  test_max_pool(1, 5, 6, 7, 1, 1, 0, rng);
  // The small conv + pool: SeedCNN's conv1 unpadded, the article's padded MNIST and CIFAR conv1,
  // then asymmetric padding, 5x5, odd sizes and 20 channels.
  test_small_pool(geometry(1, 28, 28, 32, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1), 3, rng, "conv1");
  test_small_pool(geometry(1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 3, rng, "padded MNIST conv1");
  test_small_pool(geometry(3, 32, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 2, rng, "padded CIFAR conv1");
  test_small_pool(geometry(2, 11, 13, 20, 3, 3, 1, 1, 2, 0, 1, 2, 1, 1, 1), 3, rng, "asymmetric pads, 20 channels");
  test_small_pool(geometry(1, 9, 10, 16, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1), 1, rng, "5x5 padded");
  // The 3x3 kernel over 1 or 3 channels, several pooled pixels per step: a last step short of
  // them (15 pooled columns: 2 per step and 1 left, 4 per step and 3 left; 13: 4 and 1).
  test_small_pool(geometry(3, 30, 30, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 2, rng, "3 channels -> 32, 15 pooled columns");
  test_small_pool(geometry(3, 30, 30, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 2, rng, "3 channels -> 12, 15 pooled columns");
  test_small_pool(geometry(1, 14, 26, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1), 3, rng, "1 channel -> 16, 13 pooled columns");
  test_small_pool(geometry(1, 9, 7, 20, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1), 2, rng, "1 channel -> 20, 2 pooled columns");
  return kiln_test::finish("s8-conv-test: ");
}
