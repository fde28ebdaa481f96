// The dispatch table, family by family: every ISA this CPU has, through its table, against the
// scalar table's entry (each family's *-reference.cc) bit for bit, on page-guarded buffers.
// Entries a path lacks must be null exactly where documented (common/dispatch.h).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "common/dispatch.h"
#include "conv/im2col.h"
#include "kiln/cpu.h"
#include "quant/requantize.h"
#include "s8-conv/quantize-rows.h"
#include "s8-conv/s8-depthwise.h"
#include "test-util.h"

namespace {

using kiln::DispatchTable;
using kiln::Isa;
using kiln_test::check;
using kiln_test::Guarded;
using kiln_test::Rng;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

template <typename T>
bool same_bits(const T* a, const T* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}

std::string label(const DispatchTable& t, const std::string& what) { return std::string(kiln::isa_name(t.isa)) + " " + what; }

void test_entries(const DispatchTable& t) {
  const bool avx2 = t.isa >= Isa::kAvx2, avx512 = t.isa >= Isa::kAvx512, vnni = t.isa >= Isa::kAvx512Vnni;
  check(t.f32_gemm.ukernel != nullptr && t.s8_gemm.ukernel != nullptr, label(t, "GEMM kernels set"));
  check(t.f32_conv.im2col_plane != nullptr && t.f32_conv.col2im_plane_add != nullptr && t.f32_conv.gather_even != nullptr,
        label(t, "im2col set"));
  check(t.f32_pool.max_2x2_row != nullptr && t.f32_pool.max_taps != nullptr && t.f32_pool.avg_rows != nullptr,
        label(t, "pool rows set"));
  check(t.f32_math.unary != nullptr && t.f32_math.reduce_rows != nullptr, label(t, "fp32 math kernels set"));
  check(t.s8_conv.quantize_u8_row != nullptr && t.s8_conv.dequantize_u8_row != nullptr &&
            t.s8_conv.max_pool_u8_run != nullptr && t.s8_conv.depthwise_run != nullptr &&
            t.s8_conv.affine_u8_row != nullptr,
        label(t, "int8 conv kernels set"));
  check((t.f32_conv.small_conv_image != nullptr) == avx2 && (t.f32_conv.small_conv_max_pool_image != nullptr) == avx2,
        label(t, "small conv present from AVX2 up"));
  const kiln::F32DirectConvKernels& d = t.f32_conv.direct;
  const bool all = d.rows && d.nhwc_to_nchw && d.nchw_to_nhwc && d.max_pool_rows && d.column_sums && d.weight_rows;
  const bool none = !d.rows && !d.nhwc_to_nchw && !d.nchw_to_nhwc && !d.max_pool_rows && !d.column_sums && !d.weight_rows;
  check(avx512 ? all : none, label(t, "direct conv present from AVX-512 up, all or nothing"));
  const kiln::F32ConvKernels& c = t.f32_conv;
  const bool wino = c.winograd_image && c.winograd_stage && c.winograd_bands && c.winograd_group;
  const bool no_wino = !c.winograd_image && !c.winograd_stage && !c.winograd_bands && !c.winograd_group;
  check(avx512 ? wino : no_wino, label(t, "Winograd present from AVX-512 up, all or nothing"));
  check((t.s8_conv.small_conv_pool != nullptr) == vnni, label(t, "int8 small conv on AVX-512 VNNI only"));
  check((t.s8_conv.planes_run != nullptr) == vnni, label(t, "int8 1x1 into float planes on AVX-512 VNNI only"));
  check(t.f32_resize.gather_row && t.f32_resize.double_row && t.f32_resize.taps_row && t.f32_resize.blend_rows,
        label(t, "resize rows set"));
}

void fill_random(float* p, size_t n, Rng& rng) {
  for (size_t i = 0; i < n; ++i) {
    const size_t r = rng.below(64);
    p[i] = r == 0 ? kNaN : r == 1 ? -std::numeric_limits<float>::infinity() : r < 8 ? 0.5f : rng.uniform(-4.0f, 4.0f);
  }
}

void test_max_pool_rows(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  for (size_t n = 1; n <= 37; ++n) {
    const size_t width = 2 * n + rng.below(2);
    Guarded<float> top(width), bottom(width);
    fill_random(top.data(), width, rng);
    fill_random(bottom.data(), width, rng);
    Guarded<float> out(n), want(n);
    Guarded<int32_t> idx(n), want_idx(n);
    const size_t first = rng.below(1000);
    ref.f32_pool.max_2x2_row(top.data(), bottom.data(), n, first, width, want.data(), want_idx.data());
    t.f32_pool.max_2x2_row(top.data(), bottom.data(), n, first, width, out.data(), idx.data());
    check(same_bits(out.data(), want.data(), n) && same_bits(idx.data(), want_idx.data(), n),
          label(t, "max pool 2x2 row n=" + std::to_string(n)));
    t.f32_pool.max_2x2_row(top.data(), bottom.data(), n, first, width, out.data(), nullptr);
    check(same_bits(out.data(), want.data(), n), label(t, "max pool 2x2 row without indices n=" + std::to_string(n)));
  }
}

bool close(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!(std::fabs(a[i] - b[i]) <= 1e-5f * std::max(1.0f, std::fabs(b[i])))) return false;
  }
  return true;
}

// Resize rows: the gathers bit for bit; the weighted sums to rounding (the ISA paths use FMA).
void test_resize_rows(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  for (size_t n = 1; n <= 41; ++n) {
    const size_t width = 1 + rng.below(50);
    Guarded<float> x(width);
    for (size_t i = 0; i < width; ++i) x[i] = rng.uniform(-4.0f, 4.0f);
    Guarded<int32_t> idx(4 * n);
    Guarded<float> w(4 * n);
    for (size_t i = 0; i < 4 * n; ++i) {
      idx[i] = static_cast<int32_t>(rng.below(width));
      w[i] = rng.uniform(-1.0f, 1.0f);
    }
    Guarded<float> out(2 * n), want(2 * n);
    ref.f32_resize.gather_row(x.data(), idx.data(), n, want.data());
    t.f32_resize.gather_row(x.data(), idx.data(), n, out.data());
    check(same_bits(out.data(), want.data(), n), label(t, "resize gather row n=" + std::to_string(n)));
    Guarded<float> src(n);
    for (size_t i = 0; i < n; ++i) src[i] = rng.uniform(-4.0f, 4.0f);
    ref.f32_resize.double_row(src.data(), n, want.data());
    t.f32_resize.double_row(src.data(), n, out.data());
    check(same_bits(out.data(), want.data(), 2 * n), label(t, "resize double row n=" + std::to_string(n)));
    // 2 and 4 taps (linear, cubic); 6 and 14, an antialiased linear / cubic downscale by ~0.3.
    for (size_t taps : {size_t{2}, size_t{4}, size_t{6}, size_t{14}}) {
      const size_t m = 4 * n / taps;
      if (m == 0) continue;
      Guarded<float> o(m), wo(m);
      ref.f32_resize.taps_row(x.data(), idx.data(), w.data(), taps, m, wo.data());
      t.f32_resize.taps_row(x.data(), idx.data(), w.data(), taps, m, o.data());
      // QEMU 7.2 (qemu-user -cpu Haswell) returns zeros from this kernel's chained AVX2 gathers
      // (vpgatherdd, then vgatherdps through the gathered indices); CPUs give the sums, and a
      // standalone copy of the loop shows the same difference. So under QEMU
      // (KILN_TEST_UNDER_QEMU=1, test/portability/run.mjs) the vector taps row is not compared.
      if (!kiln_test::under_qemu() || t.isa == Isa::kScalar) {
        check(close(o.data(), wo.data(), m), label(t, "resize taps row taps=" + std::to_string(taps) + " n=" + std::to_string(m)));
      }
      Guarded<float> rows(taps * n);
      for (size_t i = 0; i < taps * n; ++i) rows[i] = rng.uniform(-4.0f, 4.0f);
      std::vector<const float*> r(taps);
      for (size_t k = 0; k < taps; ++k) r[k] = rows.data() + k * n;
      ref.f32_resize.blend_rows(r.data(), w.data(), taps, n, want.data());
      t.f32_resize.blend_rows(r.data(), w.data(), taps, n, out.data());
      check(close(out.data(), want.data(), n), label(t, "resize blend rows taps=" + std::to_string(taps) + " n=" + std::to_string(n)));
    }
  }
}

// gather_even reads src[0, 2n - 1) only: the source ends at a guard page.
void test_gather_even(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  for (size_t n = 1; n <= 70; ++n) {
    Guarded<float> src(2 * n - 1), got(n), want(n);
    src.randomize(rng);
    got.fill(-7.0f);
    ref.f32_conv.gather_even(src.data(), n, want.data());
    t.f32_conv.gather_even(src.data(), n, got.data());
    check(same_bits(got.data(), want.data(), n), label(t, "gather_even n=" + std::to_string(n)));
  }
}

// avg_rows reads the taps only (the source ends at a guard page after the last one) and adds in
// the scalar order: the same bits, NaN, infinities and signed zeros included.
void test_avg_rows(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  for (size_t stride : {size_t{1}, size_t{2}, size_t{3}}) {
    for (size_t n = 1; n <= 70; n += n < 20 ? 1 : 7) {
      // Taps of a kh x kw window (dilation 1 or 2) in rows of `width` floats.
      const size_t kh = 1 + rng.below(3), kw = 1 + rng.below(3), dil = 1 + rng.below(2);
      const size_t width = (n - 1) * stride + (kw - 1) * dil + 1 + rng.below(4);
      std::vector<ptrdiff_t> taps;
      for (size_t i = 0; i < kh; ++i) {
        for (size_t j = 0; j < kw; ++j) taps.push_back(static_cast<ptrdiff_t>(i * dil * width + j * dil));
      }
      const size_t rows = 1 + rng.below(4), in_step = stride * width, out_step = n + rng.below(3);
      const size_t last = (rows - 1) * in_step + static_cast<size_t>(taps.back()) + (n - 1) * stride;
      Guarded<float> src(last + 1), got((rows - 1) * out_step + n), want(got.size());
      fill_random(src.data(), src.size(), rng);
      for (size_t j = 0; j < src.size(); j += 7) src[j] = -0.0f;
      want.fill(-3.0f);
      got.fill(-3.0f);
      const float divisor = static_cast<float>(taps.size() + rng.below(3));
      ref.f32_pool.avg_rows(src.data(), taps.data(), taps.size(), in_step, stride, n, rows, divisor, want.data(), out_step);
      t.f32_pool.avg_rows(src.data(), taps.data(), taps.size(), in_step, stride, n, rows, divisor, got.data(), out_step);
      check(same_bits(got.data(), want.data(), want.size()),
            label(t, "avg_rows stride " + std::to_string(stride) + " n=" + std::to_string(n) + " rows=" + std::to_string(rows)));
    }
  }
}

void test_im2col(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  for (int trial = 0; trial < 120; ++trial) {
    kiln::Conv2dGeometry g;
    g.in_channels = 1 + rng.below(3);
    g.in_height = 1 + rng.below(20);
    g.in_width = 1 + rng.below(trial % 2 == 0 ? 40 : 120);  // wide rows: the stride-2 rows' loop
    g.dilation_w = trial % 5 == 0 ? 2 : 1;
    g.kernel_h = 1 + rng.below(4);
    g.kernel_w = 1 + rng.below(4);
    g.stride_h = 1 + rng.below(2);
    g.stride_w = trial % 3 == 0 ? 2 : 1;
    g.pad_top = rng.below(2);
    g.pad_bottom = rng.below(2);
    g.pad_left = rng.below(3);
    g.pad_right = rng.below(3);
    g.out_channels = 1;
    g.out_height = kiln::window_output_size(g.in_height, g.pad_top, g.pad_bottom, g.kernel_h, g.stride_h, 1);
    g.out_width = kiln::window_output_size(g.in_width, g.pad_left, g.pad_right, g.kernel_w, g.stride_w, g.dilation_w);
    if (!kiln::conv2d_geometry_valid(g)) continue;
    const size_t rows = g.in_channels * g.kernel_h * g.kernel_w, plane = g.out_plane();
    Guarded<float> input(g.in_channels * g.in_plane());
    input.randomize(rng);
    Guarded<float> col(rows * plane), want(rows * plane);
    ref.f32_conv.im2col_plane(g, g.in_channels, input.data(), want.data(), plane);
    t.f32_conv.im2col_plane(g, g.in_channels, input.data(), col.data(), plane);
    check(same_bits(col.data(), want.data(), rows * plane), label(t, "im2col plane trial " + std::to_string(trial)));
    Guarded<float> grad(g.in_channels * g.in_plane()), grad_want(g.in_channels * g.in_plane());
    grad.fill(0.25f);
    grad_want.fill(0.25f);
    ref.f32_conv.col2im_plane_add(g, g.in_channels, want.data(), plane, grad_want.data());
    t.f32_conv.col2im_plane_add(g, g.in_channels, want.data(), plane, grad.data());
    check(same_bits(grad.data(), grad_want.data(), grad.size()), label(t, "col2im plane trial " + std::to_string(trial)));
  }
}

void test_quantize_rows(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  for (size_t n : {size_t(1), size_t(7), size_t(16), size_t(33), size_t(100)}) {
    Guarded<float> x(n);
    fill_random(x.data(), n, rng);
    kiln::QuantizeParams p;
    p.scale = 0.03f;
    p.zero_point = static_cast<int32_t>(rng.below(256));
    p.lo = -static_cast<float>(p.zero_point);
    p.hi = 255.0f - static_cast<float>(p.zero_point);
    Guarded<uint8_t> q(n), want(n);
    ref.s8_conv.quantize_u8_row(x.data(), want.data(), n, p);
    t.s8_conv.quantize_u8_row(x.data(), q.data(), n, p);
    check(same_bits(q.data(), want.data(), n), label(t, "quantize row n=" + std::to_string(n)));
    Guarded<float> y(n), y_want(n);
    ref.s8_conv.dequantize_u8_row(want.data(), y_want.data(), n, 0.07f, p.zero_point);
    t.s8_conv.dequantize_u8_row(want.data(), y.data(), n, 0.07f, p.zero_point);
    check(same_bits(y.data(), y_want.data(), n), label(t, "dequantize row n=" + std::to_string(n)));
  }
}

// BatchNormU8's rows: the scalar reference's bits for every code, with and without the ReLU, at
// row lengths off the vector widths (sources and outputs end at guard pages).
void test_affine_rows(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  for (size_t n : {size_t(1), size_t(7), size_t(8), size_t(15), size_t(16), size_t(33), size_t(256)}) {
    for (bool relu : {false, true}) {
      Guarded<uint8_t> x(n), y(n), want(n);
      Guarded<float> a(n), b(n);
      for (size_t i = 0; i < n; ++i) {
        x[i] = static_cast<uint8_t>(n == 256 ? i : rng.below(256));
        a[i] = rng.uniform(-3.0f, 3.0f);
        b[i] = rng.uniform(-2.0f, 2.0f);
      }
      kiln::U8AffineParams p;
      p.x_scale = 0.0371f;
      p.x_zero_point = static_cast<int32_t>(rng.below(256));
      p.y.scale = 0.021f;
      p.y.zero_point = static_cast<int32_t>(rng.below(256));
      p.y.lo = -static_cast<float>(p.y.zero_point);
      p.y.hi = 255.0f - static_cast<float>(p.y.zero_point);
      p.relu = relu;
      ref.s8_conv.affine_u8_row(x.data(), a.data(), b.data(), want.data(), n, p);
      t.s8_conv.affine_u8_row(x.data(), a.data(), b.data(), y.data(), n, p);
      check(same_bits(y.data(), want.data(), n), label(t, std::string("affine u8 row") + (relu ? " + relu" : "") + " n=" + std::to_string(n)));
    }
  }
}

void test_u8_pool(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  // Runs of 1-5 pixels, their taps `step` bytes apart (wider than a pixel: strided windows).
  for (size_t channels : {size_t(1), size_t(5), size_t(32), size_t(64), size_t(70), size_t(130)}) {
    for (size_t count : {size_t(0), size_t(1), size_t(4), size_t(9)}) {
      for (size_t pixels : {size_t(1), size_t(2), size_t(5)}) {
        const size_t step = 2 * channels + 3;
        // Each tap ends at a guard page: a read past its last pixel's channels faults.
        const size_t bytes = (pixels - 1) * step + channels;
        std::vector<std::unique_ptr<Guarded<uint8_t>>> x;
        std::vector<const uint8_t*> xs;
        for (size_t i = 0; i < count; ++i) {
          x.push_back(std::make_unique<Guarded<uint8_t>>(bytes));
          for (size_t j = 0; j < bytes; ++j) (*x.back())[j] = static_cast<uint8_t>(rng.below(256));
          xs.push_back(x.back()->data());
        }
        Guarded<uint8_t> out(pixels * channels), want(pixels * channels);
        ref.s8_conv.max_pool_u8_run(xs.data(), count, pixels, step, channels, want.data());
        const std::string shape = " c=" + std::to_string(channels) + " taps=" + std::to_string(count) + " pixels=" + std::to_string(pixels);
        for (uint8_t fill : {uint8_t(0x00), uint8_t(0xff)}) {  // sentinels: every byte must be written
          std::memset(out.data(), fill, pixels * channels);
          t.s8_conv.max_pool_u8_run(xs.data(), count, pixels, step, channels, out.data());
          check(same_bits(out.data(), want.data(), pixels * channels), label(t, "u8 max pool run" + shape));
        }
      }
    }
  }
}

// The depthwise run kernel against its definition written out here (int64 sums, then
// requantize_u8, or dequantize_f32 for a float output): channel counts that hit the 32- and
// 16-channel blocks and the scalar tail, strides 1 and 2, 1..9, 25 or 49 taps at scattered
// offsets, 1-3 pixels and more, the tap-pair and tap-quad layouts (the quad path's 64-channel
// blocks and its 32- and 16-channel groups of pixels, contiguous where 32 or 16 channels step by
// 1), with and without a bias, clamp bounds that bite (a ReLU floor, a ceiling below 255);
// page-guarded outputs, two sentinels for uint8, NaN for float.
void test_depthwise_run(const DispatchTable& t, Rng& rng) {
  for (size_t channels : {size_t(1), size_t(7), size_t(16), size_t(24), size_t(32), size_t(48), size_t(64), size_t(144), size_t(61), size_t(96), size_t(112), size_t(120), size_t(200)}) {
    // A few pixels (fewer than the VNNI kernel's groups of 2 and 4) and more.
    for (size_t case_ = 0; case_ < 4; ++case_) {
      const size_t step = 1 + case_ % 2, pixels = case_ < 2 ? 1 + rng.below(3) : 4 + rng.below(10);
      // Random counts, and those of the 3x3, 5x5 and 7x7 kernels, which the VNNI kernel compiles apart.
      static const size_t kTaps[] = {9, 25, 49};
      const size_t taps = rng.below(2) == 0 ? 1 + rng.below(9) : kTaps[rng.below(3)];
      std::vector<ptrdiff_t> offset(taps);
      size_t span = 0;
      for (size_t k = 0; k < taps; ++k) {
        offset[k] = static_cast<ptrdiff_t>(rng.below(40) * channels);
        span = std::max(span, static_cast<size_t>(offset[k]));
      }
      const size_t in_n = span + (pixels - 1) * step * channels + channels;
      Guarded<uint8_t> x(in_n);
      for (size_t i = 0; i < in_n; ++i) x[i] = static_cast<uint8_t>(rng.below(256));
      std::vector<int16_t> w(taps * channels);
      for (int16_t& v : w) v = static_cast<int16_t>(static_cast<int>(rng.below(256)) - 128);
      std::vector<int32_t> bias(channels);
      for (int32_t& b : bias) b = static_cast<int32_t>(rng.below(200001)) - 100000;
      std::vector<float> scale(channels);
      for (float& v : scale) v = 1e-4f + static_cast<float>(rng.below(1000)) * 2e-6f;
      for (bool with_bias : {true, false}) {
        kiln::S8DepthwiseRun r;
        r.offset = offset.data();
        r.taps = taps;
        r.channels = channels;
        r.pixels = pixels;
        r.pixel_step = step * channels;
        r.weight = w.data();
        r.bias = with_bias ? bias.data() : nullptr;
        r.scale = scale.data();
        r.x_zero_point = static_cast<int32_t>(rng.below(256));
        r.y_zero_point = static_cast<int32_t>(rng.below(200));
        r.lo = static_cast<float>(-r.y_zero_point);
        r.hi = static_cast<float>(230 - r.y_zero_point);
        r.x = x.data();
        std::vector<uint8_t> want(pixels * channels);
        std::vector<float> want_f32(pixels * channels);
        for (size_t p = 0; p < pixels; ++p)
          for (size_t c = 0; c < channels; ++c) {
            int64_t s = with_bias ? bias[c] : 0;
            for (size_t k = 0; k < taps; ++k) s += (int64_t(x[p * step * channels + size_t(offset[k]) + c]) - r.x_zero_point) * w[k * channels + c];
            want[p * channels + c] = kiln::requantize_u8(static_cast<int32_t>(s), scale[c], r.y_zero_point, r.lo, r.hi);
            want_f32[p * channels + c] = kiln::dequantize_f32(static_cast<int32_t>(s), scale[c], 0.0f);
          }
        // Without and with the tap-pair and tap-quad layouts (kernels that have a pair or quad
        // path take their blocks from it, the rest from the plain weights).
        kiln::S8DepthwisePacked<int16_t> pw;
        kiln::S8DepthwisePacked<int32_t> pb, qb;
        kiln::S8DepthwisePacked<float> ps, qs;
        kiln::S8DepthwisePacked<int8_t> qw;
        kiln::s8_depthwise_pack_pairs(w.data(), r.bias, scale.data(), taps, channels, r.x_zero_point, pw, pb, ps);
        kiln::s8_depthwise_pack_quads(w.data(), r.bias, scale.data(), taps, channels, r.x_zero_point, qw, qb, qs);
        for (int layouts = 0; layouts < 4; ++layouts) {
          const bool pairs = (layouts & 1) != 0, quads = (layouts & 2) != 0;
          r.pair_weight = pairs ? pw.data() : nullptr;
          r.pair_bias = pairs ? pb.data() : nullptr;
          r.pair_scale = pairs ? ps.data() : nullptr;
          r.quad_weight = quads ? qw.data() : nullptr;
          r.quad_bias = quads ? qb.data() : nullptr;
          r.quad_scale = quads ? qs.data() : nullptr;
          Guarded<uint8_t> out(pixels * channels);
          bool ok = true;
          r.out_f32 = nullptr;
          for (uint8_t fill : {uint8_t(0x00), uint8_t(0xff)}) {
            std::memset(out.data(), fill, pixels * channels);
            r.out = out.data();
            t.s8_conv.depthwise_run(r);
            ok = ok && same_bits(out.data(), want.data(), pixels * channels);
          }
          const std::string where = " c=" + std::to_string(channels) + " step " + std::to_string(step) + " taps " +
                                    std::to_string(taps) + " pixels " + std::to_string(pixels) + (with_bias ? " bias" : "") +
                                    (pairs ? " pairs" : "") + (quads ? " quads" : "");
          check(ok, label(t, "s8 depthwise run" + where));
          Guarded<float> out_f32(pixels * channels);
          for (size_t i = 0; i < pixels * channels; ++i) out_f32[i] = std::nanf("");
          r.out = nullptr;
          r.out_f32 = out_f32.data();
          t.s8_conv.depthwise_run(r);
          check(same_bits(out_f32.data(), want_f32.data(), pixels * channels), label(t, "s8 depthwise run, float output" + where));
        }
      }
    }
  }
}

// Within a few ulp (the ISA kernels use polynomial exp / erf and FMA) plus a small absolute
// error near zero (erf's 2e-7, e^x - 1 near 0); NaN where the reference has NaN, infinities equal.
bool math_close(const float* got, const float* want, size_t n, float rtol, float atol) {
  for (size_t i = 0; i < n; ++i) {
    const float g = got[i], w = want[i];
    if (w != w) {
      if (g == g) return false;
    } else if (!(g == w || std::fabs(g - w) <= rtol * std::fabs(w) + atol)) {
      return false;
    }
  }
  return true;
}

void test_math(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  using K = kiln::F32UnaryKind;
  const K kinds[] = {K::kRelu, K::kLeakyRelu, K::kClip, K::kSigmoid, K::kHardSigmoid, K::kHardSwish, K::kTanh,
                     K::kAbs, K::kNeg, K::kSqrt, K::kExp, K::kLog, K::kReciprocal, K::kFloor, K::kCeil, K::kErf,
                     K::kSoftplus, K::kSoftsign, K::kElu, K::kSelu, K::kCelu, K::kMish, K::kGelu, K::kGeluTanh,
                     K::kThresholdedRelu, K::kRound, K::kSilu};
  const float edges[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                         kNaN, 88.5f, -88.5f, 100.0f, -100.0f, -104.0f, 1e-30f, -1e-30f, 1e-40f, 3e-39f, 0.4999f, -0.5f, 20.5f, -7.0f,
                         0.625f, -0.6249f, 1.0f, 0.7071f, 2.5f, -3.5f, 1.5f, 8388607.5f};
  for (K kind : kinds) {
    kiln::F32UnaryParams p;
    p.kind = kind;
    p.alpha = 0.7f;
    p.beta = 0.4f;
    p.gamma = 1.1f;
    p.lo = -1.5f;
    p.hi = 2.5f;
    for (size_t n : {size_t(1), size_t(7), size_t(8), size_t(15), size_t(16), size_t(17), size_t(33), size_t(1000)}) {
      Guarded<float> x(n), y(n), want(n);
      for (size_t i = 0; i < n; ++i) {
        x.data()[i] = rng.below(4) == 0 ? edges[rng.below(sizeof(edges) / sizeof(edges[0]))] : rng.uniform(-12.0f, 12.0f);
      }
      ref.f32_math.unary(p, x.data(), want.data(), n);
      t.f32_math.unary(p, x.data(), y.data(), n);
      check(math_close(y.data(), want.data(), n, 4e-6f, 4e-7f),
            label(t, "unary kind " + std::to_string(static_cast<int>(kind)) + " n=" + std::to_string(n)));
      // In place.
      std::vector<float> copy(x.data(), x.data() + n);
      t.f32_math.unary(p, copy.data(), copy.data(), n);
      check(math_close(copy.data(), want.data(), n, 4e-6f, 4e-7f), label(t, "unary in place kind " + std::to_string(static_cast<int>(kind))));
    }
  }
  {
    // Silu gives the bits of the Sigmoid step and then the Mul step it replaces in a plan.
    const size_t n = 1003;
    Guarded<float> x(n), fused(n), sig(n);
    for (size_t i = 0; i < n; ++i) x.data()[i] = i % 97 == 0 ? edges[i % (sizeof(edges) / sizeof(edges[0]))] : rng.uniform(-20.0f, 20.0f);
    kiln::F32UnaryParams p;
    p.kind = K::kSigmoid;
    t.f32_math.unary(p, x.data(), sig.data(), n);
    for (size_t i = 0; i < n; ++i) sig.data()[i] = x.data()[i] * sig.data()[i];
    p.kind = K::kSilu;
    t.f32_math.unary(p, x.data(), fused.data(), n);
    bool same = true;
    for (size_t i = 0; i < n; ++i) {
      const float a = fused.data()[i], b = sig.data()[i];
      same = same && ((a != a && b != b) || std::memcmp(&a, &b, sizeof(float)) == 0);  // any NaN payload
    }
    check(same, label(t, "Silu equals Sigmoid then Mul bit for bit"));
  }
  using R = kiln::F32ReduceKind;
  for (R kind : {R::kSum, R::kSumSquare, R::kSumAbs, R::kMax, R::kMin, R::kProd, R::kLogSumExp}) {
    for (size_t cols : {size_t(1), size_t(3), size_t(16), size_t(49), size_t(64), size_t(65), size_t(3136)}) {
      const size_t rows = 1 + rng.below(5);
      Guarded<float> x(rows * cols), y(rows), want(rows);
      for (size_t i = 0; i < rows * cols; ++i) x.data()[i] = rng.uniform(kind == R::kProd ? 0.5f : -4.0f, kind == R::kProd ? 1.5f : 4.0f);
      if (cols > 10) x.data()[cols / 2] = kNaN;  // row 0 holds a NaN
      ref.f32_math.reduce_rows(kind, x.data(), rows, cols, want.data());
      t.f32_math.reduce_rows(kind, x.data(), rows, cols, y.data());
      // Float accumulation in a few vector lanes against the reference's double: about
      // cols ulp of the sum of magnitudes.
      check(math_close(y.data(), want.data(), rows, 1e-6f * static_cast<float>(cols) + 4e-6f, 1e-5f),
            label(t, "reduce rows kind " + std::to_string(static_cast<int>(kind)) + " cols=" + std::to_string(cols)));
    }
  }
}

}  // namespace

// The L2 size from CPUID's cache descriptors, within what any x86 core has (glibc's sysconf can
// disagree: under qemu's Haswell model it reads another leaf, 2 MiB against leaf 4's 4 MiB);
// l2_cache_bytes() falls back to 1 MiB where CPUID is silent.
void test_l2_size() {
  const size_t l2 = kiln::cpu_features().l2_bytes;
  check(l2 == 0 || (l2 >= (size_t{64} << 10) && l2 <= (size_t{64} << 20)), "L2 size 0 or within 64 KiB..64 MiB: " + std::to_string(l2));
  check(kiln::l2_cache_bytes() == (l2 != 0 ? l2 : size_t{1} << 20), "l2_cache_bytes is the detected size or 1 MiB");
}

int main() {
  test_l2_size();
  const DispatchTable* ref = kiln::dispatch_for(Isa::kScalar);
  check(ref != nullptr && ref->isa == Isa::kScalar, "the scalar table exists");
  if (ref == nullptr) return kiln_test::finish();
  Rng rng(11);
  for (Isa isa : kiln::supported_isas()) {
    const DispatchTable* t = kiln::dispatch_for(isa);
    check(t != nullptr && t->isa == isa, std::string("table of ") + kiln::isa_name(isa));
    if (t == nullptr) continue;
    test_entries(*t);
    test_max_pool_rows(*t, *ref, rng);
    test_im2col(*t, *ref, rng);
    test_gather_even(*t, *ref, rng);
    test_avg_rows(*t, *ref, rng);
    test_resize_rows(*t, *ref, rng);
    test_quantize_rows(*t, *ref, rng);
    test_affine_rows(*t, *ref, rng);
    test_u8_pool(*t, *ref, rng);
    test_depthwise_run(*t, rng);
    test_math(*t, *ref, rng);
  }
  return kiln_test::finish("dispatch: ");
}
