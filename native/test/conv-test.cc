// Conv2dPlan (the inference entry point, not reachable from JS directly) and conv2d_backward,
// against a float64 oracle on every ISA this CPU has.
//
// Every array, the plan's scratch included, ends exactly where an inaccessible page begins, so a
// read or write past the end crashes the test instead of passing silently; scratch is sized by
// scratch_floats() alone, which checks that figure. Outputs and scratch start as NaN, so an
// unwritten element or a value read from stale scratch fails. Exit code 1 on any failure.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "kiln/conv.h"
#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/pool.h"
#include "kiln/thread-pool.h"
#include "common/dispatch.h"
#include "conv/conv-ukernel.h"
#include "conv/conv2d-tiling.h"
#include "conv/depthwise.h"
#include "conv/direct-conv.h"
#include "runtime/ops/pool2d.h"
#include "conv/small-conv.h"

#include "check.h"
#include "test-util.h"

namespace {

using kiln_test::Rng;
using Guarded = kiln_test::Guarded<float>;

const float kNaN = std::numeric_limits<float>::quiet_NaN();
using kiln_test::g_failed;
using kiln_test::g_passed;



void check(bool ok, const char* what, const char* isa, const char* name) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL %s [%s]: %s\n", name, isa, what);
  }
}

struct Case {
  const char* name;
  size_t batch, cin, h, w, cout, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups;
  bool bias, relu;
};

kiln::Conv2dGeometry geometry(const Case& c) {
  kiln::Conv2dGeometry g;
  g.in_channels = c.cin;
  g.in_height = c.h;
  g.in_width = c.w;
  g.out_channels = c.cout;
  g.kernel_h = c.kh;
  g.kernel_w = c.kw;
  g.stride_h = c.sh;
  g.stride_w = c.sw;
  g.pad_top = c.pt;
  g.pad_left = c.pl;
  g.pad_bottom = c.pb;
  g.pad_right = c.pr;
  g.dilation_h = c.dh;
  g.dilation_w = c.dw;
  g.groups = c.groups;
  g.out_height = kiln::window_output_size(c.h, c.pt, c.pb, c.kh, c.sh, c.dh);
  g.out_width = kiln::window_output_size(c.w, c.pl, c.pr, c.kw, c.sw, c.dw);
  return g;
}

// Multiply-adds of one forward pass over `batch` images (what skip_under_qemu weighs).
double multiply_adds(const kiln::Conv2dGeometry& g, size_t batch) {
  return static_cast<double>(batch) * g.out_channels * g.out_plane() * g.patch();
}

// Calls visit(input index, weight index, output index) for every multiply.
template <typename Visit>
void for_each_tap(const kiln::Conv2dGeometry& g, size_t batch, Visit visit) {
  const size_t cin = g.in_channels_per_group(), m = g.out_channels_per_group();
  for (size_t n = 0; n < batch; ++n)
    for (size_t o = 0; o < g.out_channels; ++o)
      for (size_t oh = 0; oh < g.out_height; ++oh)
        for (size_t ow = 0; ow < g.out_width; ++ow)
          for (size_t c = 0; c < cin; ++c)
            for (size_t kh = 0; kh < g.kernel_h; ++kh)
              for (size_t kw = 0; kw < g.kernel_w; ++kw) {
                const ptrdiff_t ih = static_cast<ptrdiff_t>(oh * g.stride_h + kh * g.dilation_h) - static_cast<ptrdiff_t>(g.pad_top);
                const ptrdiff_t iw = static_cast<ptrdiff_t>(ow * g.stride_w + kw * g.dilation_w) - static_cast<ptrdiff_t>(g.pad_left);
                if (ih < 0 || iw < 0 || ih >= static_cast<ptrdiff_t>(g.in_height) || iw >= static_cast<ptrdiff_t>(g.in_width)) continue;
                const size_t grp = o / m;
                const size_t ii = ((n * g.in_channels + grp * cin + c) * g.in_height + static_cast<size_t>(ih)) * g.in_width + static_cast<size_t>(iw);
                const size_t wi = ((o * cin + c) * g.kernel_h + kh) * g.kernel_w + kw;
                const size_t oi = ((n * g.out_channels + o) * g.out_height + oh) * g.out_width + ow;
                visit(ii, wi, oi);
              }
}

// |a - e| within 1e-5 of the sum of term magnitudes (plus a little): a missing term fails.
bool close(const float* actual, const std::vector<double>& expected, const std::vector<double>& scale) {
  for (size_t i = 0; i < expected.size(); ++i) {
    const double tol = 1e-5 * scale[i] + 1e-6;
    if (!(std::fabs(actual[i] - expected[i]) <= tol)) {
      std::printf("  element %zu: %.9g, expected %.9g\n", i, static_cast<double>(actual[i]), expected[i]);
      return false;
    }
  }
  return true;
}

bool identical(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(a + i, b + i, sizeof(float)) != 0) return false;
  }
  return true;
}

void run_case(const Case& c, const char* isa) {
  const kiln::Conv2dGeometry g = geometry(c);
  if (kiln_test::skip_under_qemu(multiply_adds(g, c.batch))) return;
  if (!kiln::conv2d_geometry_valid(g)) {
    check(false, "geometry invalid", isa, c.name);
    return;
  }
  const size_t in_size = c.batch * g.in_channels * g.in_plane();
  const size_t out_size = c.batch * g.out_channels * g.out_plane();
  Rng rng(c.batch * 1000 + c.cin * 31 + c.cout);
  Guarded input(in_size), weight(g.weight_size()), bias(g.out_channels), grad_output(out_size);
  input.randomize(rng);
  weight.randomize(rng);
  bias.randomize(rng);
  grad_output.randomize(rng);

  // Forward oracle.
  std::vector<double> ref(out_size, 0.0), scale(out_size, 0.0);
  for (size_t i = 0; i < out_size; ++i) {
    const float b = c.bias ? bias[(i / g.out_plane()) % g.out_channels] : 0.0f;
    ref[i] = b;
    scale[i] = std::fabs(b);
  }
  for_each_tap(g, c.batch, [&](size_t ii, size_t wi, size_t oi) {
    const double t = static_cast<double>(input[ii]) * weight[wi];
    ref[oi] += t;
    scale[oi] += std::fabs(t);
  });
  const std::vector<double> ref_linear(ref);  // before the ReLU
  if (c.relu) {
    for (double& v : ref) v = v < 0 ? 0 : v;
  }

  // Packed under the scalar ISA, run under the current one: the packed layout is ISA-independent.
  const kiln::Isa current = kiln::active_isa();
  kiln::set_active_isa(kiln::Isa::kScalar);
  const kiln::Conv2dPlan plan(g, weight.data(), c.bias ? bias.data() : nullptr, c.relu);
  kiln::set_active_isa(current);

  // Stems run as they are where the direct kernel does (AVX-512), as stride phases below it.
  const bool stem = g.stride_h == 2 && g.stride_w == 2 && g.dilation_h == 1 && g.dilation_w == 1 && g.groups == 1 &&
                    g.in_channels <= 4 && g.kernel_h >= 3 && g.kernel_w >= 3;
  check(plan.phase_split(kiln::dispatch()) == (stem && kiln::dispatch().f32_conv.direct.rows == nullptr),
        "stems split into stride phases exactly where the direct kernel is missing", isa, c.name);
  // Padded stride-2 convolutions whose patch (at most 1024 deep) the direct kernel takes run on it
  // over a padded copy, where the table has it.
  const bool padded = (g.pad_top | g.pad_left | g.pad_bottom | g.pad_right) != 0;
  const bool padded_stride2 = padded && g.stride_h == 2 && g.stride_w == 2 && g.dilation_h == 1 && g.dilation_w == 1 &&
                              g.groups == 1 && g.patch() <= 1024;
  check(plan.strided_direct(kiln::dispatch()) ==
            ((stem || padded_stride2) && kiln::dispatch().f32_conv.direct.rows != nullptr),
        "stride-2 convolutions run as they are on the direct kernel exactly where it fits", isa, c.name);
  Guarded scratch(plan.scratch_floats(c.batch));
  Guarded output(out_size);
  for (size_t threads : {size_t{1}, size_t{0}}) {
    scratch.fill(kNaN);
    output.fill(kNaN);
    plan.run(input.data(), output.data(), c.batch, scratch.data(), threads);
    check(close(output.data(), ref, scale), threads == 1 ? "plan, 1 thread" : "plan, all threads", isa, c.name);
  }
  // Two runs at once on one plan, each with its own scratch, give the same bits.
  Guarded scratch2(plan.scratch_floats(c.batch)), output2(out_size);
  output2.fill(kNaN);
  std::thread other([&] { plan.run(input.data(), output2.data(), c.batch, scratch2.data(), 1); });
  output.fill(kNaN);
  plan.run(input.data(), output.data(), c.batch, scratch.data(), 1);
  other.join();
  check(identical(output.data(), output2.data(), out_size), "concurrent runs agree", isa, c.name);

  Guarded forward(out_size);
  forward.fill(kNaN);
  kiln::conv2d_forward(g, c.batch, input.data(), weight.data(), c.bias ? bias.data() : nullptr, c.relu, forward.data());
  check(identical(forward.data(), output.data(), out_size), "conv2d_forward equals the plan", isa, c.name);

  {
    // A fused post function (as the runtime fuses SiLU): on the GEMM paths applied to each piece
    // in cache, elsewhere in a pass after; either way the plain output passed through it, bit for
    // bit, on 1 and all threads.
    kiln::set_active_isa(kiln::Isa::kScalar);
    kiln::Conv2dPlan posted(g, weight.data(), c.bias ? bias.data() : nullptr, c.relu);
    kiln::set_active_isa(current);
    posted.fuse_post({[](const void*, float* v, size_t n) {
                        for (size_t i = 0; i < n; ++i) v[i] = v[i] * v[i] - 0.5f;
                      },
                      nullptr});
    std::vector<float> want(forward.data(), forward.data() + out_size);
    for (float& v : want) v = v * v - 0.5f;
    for (size_t threads : {size_t{1}, size_t{0}}) {
      scratch.fill(kNaN);
      output.fill(kNaN);
      posted.run(input.data(), output.data(), c.batch, scratch.data(), threads);
      check(identical(want.data(), output.data(), out_size), threads == 1 ? "post function, 1 thread" : "post function, all threads",
            isa, c.name);
    }

    // A residual (a residual block's Add fused into the convolution): added where the post
    // function runs, before it, at each piece's own offset in the output, so the plain output
    // plus the residual, then the post function, bit for bit. Guard pages after the residual
    // catch a piece read past its end.
    Guarded residual(out_size);
    residual.randomize(rng);
    std::vector<float> summed(out_size), summed_post(out_size);
    for (size_t i = 0; i < out_size; ++i) {
      summed[i] = forward[i] + residual[i];
      summed_post[i] = summed[i] * summed[i] - 0.5f;
    }
    for (size_t threads : {size_t{1}, size_t{0}}) {
      scratch.fill(kNaN);
      output.fill(kNaN);
      plan.run(kiln::dispatch(), input.data(), output.data(), c.batch, scratch.data(), threads, residual.data());
      check(identical(summed.data(), output.data(), out_size), threads == 1 ? "residual, 1 thread" : "residual, all threads", isa,
            c.name);
      scratch.fill(kNaN);
      output.fill(kNaN);
      posted.run(kiln::dispatch(), input.data(), output.data(), c.batch, scratch.data(), threads, residual.data());
      check(identical(summed_post.data(), output.data(), out_size),
            threads == 1 ? "residual then post function, 1 thread" : "residual then post function, all threads", isa, c.name);
    }

    // The residual in the output already (the runtime's Conv written over its residual): the GEMMs
    // sum onto it where the plan accumulates(), elsewhere the same through a copy; the ReLU (the
    // case's, asked for by the caller of a plan built without one) after the sum.
    kiln::set_active_isa(kiln::Isa::kScalar);
    const kiln::Conv2dPlan linear(g, weight.data(), c.bias ? bias.data() : nullptr, false);
    kiln::set_active_isa(current);
    std::vector<double> acc_ref(out_size), acc_scale(out_size);
    for (size_t i = 0; i < out_size; ++i) {
      acc_ref[i] = ref_linear[i] + residual[i];
      if (c.relu) acc_ref[i] = std::max(0.0, acc_ref[i]);
      acc_scale[i] = scale[i] + std::fabs(residual[i]);
    }
    for (size_t threads : {size_t{1}, size_t{0}}) {
      scratch.fill(kNaN);
      std::memcpy(output.data(), residual.data(), out_size * sizeof(float));
      linear.run_accumulating(kiln::dispatch(), input.data(), output.data(), c.batch, scratch.data(), threads, c.relu);
      check(close(output.data(), acc_ref, acc_scale),
            threads == 1 ? "summed onto the residual, 1 thread" : "summed onto the residual, all threads", isa, c.name);
    }
  }

  {
    // Clip fused into the plan (the depthwise kernel, the GEMM epilogue, the direct kernel's
    // bounds, or a pass after the small-patch kernel): the oracle clamped (the plan's own ReLU
    // still applies).
    kiln::set_active_isa(kiln::Isa::kScalar);
    kiln::Conv2dPlan clamped(g, weight.data(), c.bias ? bias.data() : nullptr, c.relu);
    kiln::set_active_isa(current);
    check(clamped.fuse_clamp(-0.25f, 0.3f), "the plan takes the clamp", isa, c.name);
    std::vector<double> ref_clamped(ref);
    for (double& v : ref_clamped) v = std::min(0.3, std::max(-0.25, v));
    scratch.fill(kNaN);
    output.fill(kNaN);
    clamped.run(input.data(), output.data(), c.batch, scratch.data(), 0);
    check(close(output.data(), ref_clamped, scale), "clamped output", isa, c.name);
  }


  // Backward oracle and guarded outputs.
  std::vector<double> gi(in_size, 0.0), gis(in_size, 0.0), gw(g.weight_size(), 0.0), gws(g.weight_size(), 0.0);
  std::vector<double> gb(g.out_channels, 0.0), gbs(g.out_channels, 0.0);
  for (size_t i = 0; i < out_size; ++i) {
    gb[(i / g.out_plane()) % g.out_channels] += grad_output[i];
    gbs[(i / g.out_plane()) % g.out_channels] += std::fabs(grad_output[i]);
  }
  for_each_tap(g, c.batch, [&](size_t ii, size_t wi, size_t oi) {
    gi[ii] += static_cast<double>(weight[wi]) * grad_output[oi];
    gis[ii] += std::fabs(static_cast<double>(weight[wi]) * grad_output[oi]);
    gw[wi] += static_cast<double>(input[ii]) * grad_output[oi];
    gws[wi] += std::fabs(static_cast<double>(input[ii]) * grad_output[oi]);
  });
  Guarded grad_input(in_size), grad_weight(g.weight_size()), grad_bias(g.out_channels);
  grad_input.fill(kNaN);
  grad_weight.fill(kNaN);
  grad_bias.fill(kNaN);
  kiln::conv2d_backward(g, c.batch, input.data(), weight.data(), grad_output.data(), grad_input.data(),
                        grad_weight.data(), grad_bias.data());
  check(close(grad_input.data(), gi, gis), "grad_input", isa, c.name);
  check(close(grad_weight.data(), gw, gws), "grad_weight", isa, c.name);
  check(close(grad_bias.data(), gb, gbs), "grad_bias", isa, c.name);
}

// Depthwise cases whose channel blocks, and whose stride-2 rows, ran, per ISA (a check that the
// comparisons below happened).
size_t g_block_cases = 0;
size_t g_stride2_cases = 0;

// The depthwise convolution's paths on the active ISA: the channel blocks (channels in lanes, row
// bands on large planes) and the stride-2 rows (rows split into even and odd columns) must give
// the planar kernels' bits, a NaN input included, with and without a clamp, on 1 and all
// threads, from NaN-filled scratch, and so must kAuto. Each path writes into its own sentinel, so
// an output either one skips shows.
void run_depthwise_paths(const Case& c, const char* isa) {
  const kiln::Conv2dGeometry g = geometry(c);
  const kiln::DispatchTable& t = kiln::dispatch();
  if (!kiln::is_depthwise(g) || kiln_test::over_qemu_budget(multiply_adds(g, c.batch))) return;  // run_case counted it
  const bool blocks_fit = kiln::depthwise_channel_blocks_fit(t, g);
  const bool stride2_fit = kiln::depthwise_stride2_rows_fit(t, g);
  if (t.f32_conv.depthwise.channel_block != nullptr && g.out_channels_per_group() == 1 && !blocks_fit) {
    check(g.kernel_h * g.kernel_w > 64, "channel blocks take every kernel up to 64 taps", isa, c.name);
  }
  if (t.f32_conv.depthwise.stride2_rows != nullptr) {
    const bool wants = g.stride_w == 2 && g.dilation_w == 1 && (g.kernel_w == 3 || g.kernel_w == 5 || g.kernel_w == 7);
    check(stride2_fit == wants, "stride-2 rows take every 3, 5 and 7 wide kernel at horizontal stride 2", isa, c.name);
  }
  const kiln::WindowPath auto_path = kiln::depthwise_auto_path(t, g);
  const kiln::WindowPath want_auto = stride2_fit && g.out_width >= 48 ? kiln::WindowPath::kStride2Rows
                                     : blocks_fit && g.out_channels_per_group() == 1 ? kiln::WindowPath::kChannelBlocks
                                                                                      : kiln::WindowPath::kPlanar;
  check(auto_path == want_auto, "kAuto: stride-2 rows from 48 output columns, else channel blocks, else planar", isa,
        c.name);
  std::vector<kiln::WindowPath> paths{kiln::WindowPath::kAuto};
  if (blocks_fit) {
    ++g_block_cases;
    paths.push_back(kiln::WindowPath::kChannelBlocks);
  }
  if (stride2_fit) {
    ++g_stride2_cases;
    paths.push_back(kiln::WindowPath::kStride2Rows);
  }
  const size_t in_size = c.batch * g.in_channels * g.in_plane();
  const size_t out_size = c.batch * g.out_channels * g.out_plane();
  Rng rng(c.batch * 313 + c.cin);
  Guarded input(in_size), weight(g.weight_size()), bias(g.out_channels);
  input.randomize(rng);
  weight.randomize(rng);
  bias.randomize(rng);
  input[in_size / 2] = kNaN;
  const float inf = std::numeric_limits<float>::infinity();
  const float bounds[][2] = {{-inf, inf}, {-0.25f, 0.3f}};
  Guarded scratch(kiln::depthwise_scratch_floats(g)), planar(out_size), other(out_size);
  const auto path_name = [](kiln::WindowPath p) {
    return p == kiln::WindowPath::kAuto ? "kAuto" : p == kiln::WindowPath::kChannelBlocks ? "channel blocks" : "stride-2 rows";
  };
  for (const auto& b : bounds) {
    for (size_t threads : {size_t{1}, size_t{0}}) {
      scratch.fill(kNaN);
      planar.fill(kNaN);
      kiln::depthwise_forward(t, g, c.batch, input.data(), weight.data(), c.bias ? bias.data() : nullptr, b[0], b[1],
                              planar.data(), scratch.data(), threads, {}, kiln::WindowPath::kPlanar);
      for (const kiln::WindowPath path : paths) {
        scratch.fill(kNaN);
        other.fill(-12345.0f);
        kiln::depthwise_forward(t, g, c.batch, input.data(), weight.data(), c.bias ? bias.data() : nullptr, b[0], b[1],
                                other.data(), scratch.data(), threads, {}, path);
        check(identical(planar.data(), other.data(), out_size),
              (std::string(path_name(path)) + " equals planar bit for bit").c_str(), isa, c.name);
      }
      // A post function, applied by each path to the planes or bands it writes: every output
      // passed through it exactly once (twice, or not at all, changes v * v - 0.5).
      std::vector<float> want(planar.data(), planar.data() + out_size);
      for (float& v : want) v = v * v - 0.5f;
      const kiln::Conv2dPlan::PostOp post{[](const void*, float* v, size_t n) {
                                            for (size_t i = 0; i < n; ++i) v[i] = v[i] * v[i] - 0.5f;
                                          },
                                          nullptr};
      paths.push_back(kiln::WindowPath::kPlanar);
      for (const kiln::WindowPath path : paths) {
        scratch.fill(kNaN);
        other.fill(-12345.0f);
        kiln::depthwise_forward(t, g, c.batch, input.data(), weight.data(), c.bias ? bias.data() : nullptr, b[0], b[1],
                                other.data(), scratch.data(), threads, post, path);
        check(identical(want.data(), other.data(), out_size),
              (std::string(path == kiln::WindowPath::kPlanar ? "planar" : path_name(path)) + " applies the post function once").c_str(),
              isa, c.name);
      }
      paths.pop_back();
    }
  }
}

// A max pool window over planes: channels (planes), h, w, kernel, stride, pads (begin, end),
// dilation, per axis alike unless noted, and ceil mode.
struct MaxPoolCase {
  const char* name;
  size_t planes, h, w;
  int64_t kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
  bool ceil;
};

kiln::runtime::PoolAxis pool_axis(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pe, int64_t d, bool ceil) {
  kiln::runtime::PoolAxis a;
  a.in = in;
  a.kernel = k;
  a.stride = s;
  a.pad_begin = pb;
  a.pad_end = pe;
  a.dilation = d;
  const int64_t avail = in + pb + pe - (d * (k - 1) + 1);
  a.out = (ceil ? avail + s - 1 : avail) / s + 1;
  if (ceil && (a.out - 1) * s >= in + pb) --a.out;
  return a;
}

// The max pool's two paths on the active ISA: channel blocks give the planar kernel's bits (ties
// between +0 and -0 included), and a block holding a NaN falls back to planar (NaN wins), from
// outputs filled with different sentinels, on 1 and all threads.
void run_max_pool_paths(const MaxPoolCase& c, const char* isa) {
  const kiln::runtime::Pool2d pool(true, false, pool_axis(static_cast<int64_t>(c.h), c.kh, c.sh, c.pt, c.pb, c.dh, c.ceil),
                                   pool_axis(static_cast<int64_t>(c.w), c.kw, c.sw, c.pl, c.pr, c.dw, c.ceil));
  const kiln::DispatchTable& t = kiln::dispatch();
  if (t.f32_pool.max_channel_block == nullptr) return;
  check(pool.channel_blocks_fit(t), "channel blocks take the pool", isa, c.name);
  const size_t in_size = c.planes * pool.in_plane(), out_size = c.planes * pool.out_plane();
  Rng rng(c.planes * 7 + c.h);
  Guarded input(in_size), planar(out_size), blocks(out_size);
  input.randomize(rng);
  // Ties of +0 and -0 (max keeps one of them by position), -inf, and a NaN in one block only.
  for (size_t i = 0; i < in_size; i += 5) input[i] = (i / 5) % 2 == 0 ? 0.0f : -0.0f;
  input[in_size / 3] = -std::numeric_limits<float>::infinity();
  for (bool with_nan : {false, true}) {
    if (with_nan) input[in_size - 1] = kNaN;
    for (size_t threads : {size_t{1}, size_t{0}}) {
      planar.fill(kNaN);
      pool.run(input.data(), planar.data(), c.planes, threads, kiln::WindowPath::kPlanar);
      blocks.fill(-12345.0f);
      pool.run(input.data(), blocks.data(), c.planes, threads, kiln::WindowPath::kChannelBlocks);
      check(identical(planar.data(), blocks.data(), out_size), with_nan ? "NaN block: channel blocks equal planar" : "channel blocks equal planar bit for bit", isa, c.name);
    }
  }
}

// The average over each window, written out here window by window (taps in row-major order
// from 0.0f, divided by the count of taps inside, or inside the pads with count_include_pad): the
// oracle for the runtime's AveragePool, which adds the inner windows a row of taps at a time.
void naive_avg_pool(const MaxPoolCase& c, const kiln::runtime::Pool2d& pool, bool include_pad, const float* x, float* y) {
  const auto& ha = pool.height_axis();
  const auto& wa = pool.width_axis();
  for (size_t p = 0; p < c.planes; ++p) {
    const float* in = x + p * pool.in_plane();
    for (int64_t oh = 0; oh < ha.out; ++oh) {
      for (int64_t ow = 0; ow < wa.out; ++ow) {
        float sum = 0.0f;
        int64_t inside = 0, padded = 0;
        for (int64_t i = 0; i < ha.kernel; ++i) {
          const int64_t h = oh * ha.stride - ha.pad_begin + i * ha.dilation;
          for (int64_t j = 0; j < wa.kernel; ++j) {
            const int64_t w = ow * wa.stride - wa.pad_begin + j * wa.dilation;
            if (h >= -ha.pad_begin && h < ha.in + ha.pad_end && w >= -wa.pad_begin && w < wa.in + wa.pad_end) ++padded;
            if (h < 0 || h >= ha.in || w < 0 || w >= wa.in) continue;
            sum += in[h * wa.in + w];
            ++inside;
          }
        }
        const int64_t divisor = include_pad ? padded : inside;
        y[p * pool.out_plane() + static_cast<size_t>(oh * wa.out + ow)] = divisor == 0 ? 0.0f : sum / static_cast<float>(divisor);
      }
    }
  }
}

// AveragePool on the active ISA against the oracle, bit for bit, with and without
// count_include_pad, on 1 and all threads, from a sentinel-filled output.
void run_avg_pool(const MaxPoolCase& c, const char* isa) {
  for (bool include_pad : {false, true}) {
    const kiln::runtime::Pool2d pool(false, include_pad, pool_axis(static_cast<int64_t>(c.h), c.kh, c.sh, c.pt, c.pb, c.dh, c.ceil),
                                     pool_axis(static_cast<int64_t>(c.w), c.kw, c.sw, c.pl, c.pr, c.dw, c.ceil));
    const size_t in_size = c.planes * pool.in_plane(), out_size = c.planes * pool.out_plane();
    Rng rng(c.planes * 5 + c.w);
    Guarded input(in_size), want(out_size), got(out_size);
    input.randomize(rng);
    for (size_t i = 0; i < in_size; i += 11) input[i] = -0.0f;
    input[in_size / 2] = kNaN;
    input[in_size / 3] = std::numeric_limits<float>::infinity();
    naive_avg_pool(c, pool, include_pad, input.data(), want.data());
    for (size_t threads : {size_t{1}, size_t{0}}) {
      got.fill(-12345.0f);
      pool.run(input.data(), got.data(), c.planes, threads);
      check(identical(got.data(), want.data(), out_size), include_pad ? "average pool (count_include_pad) equals the oracle" : "average pool equals the oracle", isa, c.name);
    }
  }
}

struct PoolCase {
  Case conv;
  size_t kh, kw, sh, sw, dh, dw;
  bool nan_input;  // one input value NaN: every window that sees it must give NaN
  // Padding before (the same after), and ceil mode: windows reaching past the output.
  size_t pt = 0, pl = 0;
  bool ceil = false;
};

// Pooled size along an axis as ONNX's MaxPool computes it (the last window starts inside the
// input or its padding before).
size_t pooled_size_of(size_t in, size_t k, size_t s, size_t d, size_t pad, bool ceil) {
  const size_t span = d * (k - 1) + 1, avail = in + 2 * pad - span;
  size_t out = (ceil ? avail + s - 1 : avail) / s + 1;
  if (ceil && (out - 1) * s >= in + pad) --out;
  return out;
}

// run_max_pooled and conv2d_max_pool_forward against plan.run (checked against the oracle above)
// followed by max_pool2d_forward: the max is exact, so values and winner indices must agree bit
// for bit, NaN included.
void run_pool_case(const PoolCase& pc, const char* isa) {
  const Case& c = pc.conv;
  const kiln::Conv2dGeometry g = geometry(c);
  if (kiln_test::skip_under_qemu(multiply_adds(g, c.batch))) return;
  kiln::ConvMaxPool pool;
  pool.kernel_h = pc.kh;
  pool.kernel_w = pc.kw;
  pool.stride_h = pc.sh;
  pool.stride_w = pc.sw;
  pool.dilation_h = pc.dh;
  pool.dilation_w = pc.dw;
  pool.pad_top = pc.pt;
  pool.pad_left = pc.pl;
  pool.out_h = pooled_size_of(g.out_height, pc.kh, pc.sh, pc.dh, pc.pt, pc.ceil);
  pool.out_w = pooled_size_of(g.out_width, pc.kw, pc.sw, pc.dw, pc.pl, pc.ceil);
  check(kiln::conv_max_pool_valid(g, pool), "pool window valid", isa, c.name);
  // Windows covering no output position are refused: one past the last column, padding as wide
  // as the window.
  kiln::ConvMaxPool wrong = pool;
  wrong.out_w = g.out_width + pc.pl + 1;
  check(!kiln::conv_max_pool_valid(g, wrong), "a window past the output refused", isa, c.name);
  wrong = pool;
  wrong.pad_top = pc.dh * (pc.kh - 1) + 1;
  check(!kiln::conv_max_pool_valid(g, wrong), "padding as tall as the window refused", isa, c.name);
  const size_t in_size = c.batch * g.in_channels * g.in_plane();
  const size_t out_size = c.batch * g.out_channels * g.out_plane();
  const size_t pooled_size = c.batch * g.out_channels * pool.out_h * pool.out_w;
  Rng rng(c.batch * 77 + c.cout);
  Guarded input(in_size), weight(g.weight_size()), bias(g.out_channels);
  input.randomize(rng);
  weight.randomize(rng);
  bias.randomize(rng);
  if (pc.nan_input) input[in_size / 2 + 1] = kNaN;
  const kiln::Conv2dPlan plan(g, weight.data(), c.bias ? bias.data() : nullptr, c.relu);
  // The direct kernels fuse the pool: channels-in-lanes on AVX-512, the small-patch one on AVX2 too.
  const kiln::Isa active = kiln::active_isa();
  kiln::Conv2dGeometry unpadded = g;  // the small-patch kernel runs padded images with their zeros made real
  unpadded.in_height += g.pad_top + g.pad_bottom;
  unpadded.in_width += g.pad_left + g.pad_right;
  unpadded.pad_top = unpadded.pad_left = unpadded.pad_bottom = unpadded.pad_right = 0;
  // A stride-2 stem runs as a stride-1 plan over its stride phases, whose direct kernel fuses.
  const bool phased = g.stride_h == 2 && g.stride_w == 2 && g.dilation_h == 1 && g.dilation_w == 1 && g.groups == 1 &&
                      g.in_channels <= 4 && g.kernel_h >= 3 && g.kernel_w >= 3;
  const bool fusable = (active >= kiln::Isa::kAvx512 && (kiln::direct_conv_forward_fits(g) || phased)) ||
                       (active >= kiln::Isa::kAvx2 && !phased && kiln::small_conv_fits(unpadded));
  check(plan.can_fuse_max_pool() == fusable, "fused max pool offered exactly where a direct kernel runs", isa, c.name);
  // Windows past the output fuse only on the channels-in-lanes direct kernels (AVX-512).
  const bool interior = pool.interior(g.out_height, g.out_width);
  check(plan.can_fuse_max_pool(kiln::dispatch(), pool) == (fusable && (interior || active >= kiln::Isa::kAvx512)),
        "a padded or overhanging pool fuses exactly where the direct kernels run", isa, c.name);
  check(interior == (pc.pt == 0 && pc.pl == 0 && pool.out_h == (g.out_height - pc.dh * (pc.kh - 1) - 1) / pc.sh + 1 &&
                     pool.out_w == (g.out_width - pc.dw * (pc.kw - 1) - 1) / pc.sw + 1),
        "interior() is no padding and the floor sizes", isa, c.name);

  Guarded scratch(plan.scratch_floats(c.batch)), conv_out(out_size);
  scratch.fill(kNaN);
  plan.run(input.data(), conv_out.data(), c.batch, scratch.data(), 1);
  kiln::Pool2dGeometry p;
  p.planes = c.batch * g.out_channels;
  p.in_height = g.out_height;
  p.in_width = g.out_width;
  p.out_height = pool.out_h;
  p.out_width = pool.out_w;
  p.kernel_h = pc.kh;
  p.kernel_w = pc.kw;
  p.stride_h = pc.sh;
  p.stride_w = pc.sw;
  p.dilation_h = pc.dh;
  p.dilation_w = pc.dw;
  p.pad_top = pc.pt;
  p.pad_left = pc.pl;
  // After: what the last window reaches past the plane.
  const size_t reach_h = (pool.out_h - 1) * pc.sh + pc.dh * (pc.kh - 1) + 1, reach_w = (pool.out_w - 1) * pc.sw + pc.dw * (pc.kw - 1) + 1;
  p.pad_bottom = reach_h > pc.pt + g.out_height ? reach_h - pc.pt - g.out_height : 0;
  p.pad_right = reach_w > pc.pl + g.out_width ? reach_w - pc.pl - g.out_width : 0;
  std::vector<float> expected(pooled_size);
  std::vector<int32_t> expected_idx(pooled_size);
  kiln::max_pool2d_forward(p, conv_out.data(), expected.data(), expected_idx.data(), 1);
  size_t nans = 0;
  for (float v : expected) nans += std::isnan(v);
  check(!pc.nan_input || nans > 0, "the NaN input reaches a window", isa, c.name);

  Guarded pooled(pooled_size), idx(pooled_size);
  int32_t* idx_data = reinterpret_cast<int32_t*>(idx.data());
  auto same = [&](const char* what) {
    const bool values = identical(pooled.data(), expected.data(), pooled_size);
    const bool winners = std::memcmp(idx_data, expected_idx.data(), pooled_size * sizeof(int32_t)) == 0;
    check(values && winners, what, isa, c.name);
  };
  if (plan.can_fuse_max_pool()) {
    Guarded pooled_scratch(plan.max_pooled_scratch_floats(c.batch, pool));
    for (size_t threads : {size_t{1}, size_t{0}}) {
      pooled_scratch.fill(kNaN);
      pooled.fill(kNaN);
      idx.fill(kNaN);
      plan.run_max_pooled(input.data(), pooled.data(), c.batch, pool, pooled_scratch.data(), threads, idx_data);
      same(threads == 1 ? "fused max pool, 1 thread" : "fused max pool, all threads");
    }
    pooled.fill(kNaN);
    plan.run_max_pooled(input.data(), pooled.data(), c.batch, pool, pooled_scratch.data(), 1);
    check(identical(pooled.data(), expected.data(), pooled_size), "fused max pool without indices", isa, c.name);
  }
  {
    // A fused clamp commutes with the pool: clamp(pool(conv)) on every path (fused or staged).
    kiln::Conv2dPlan clamped(g, weight.data(), c.bias ? bias.data() : nullptr, c.relu);
    clamped.fuse_clamp(-0.2f, 0.4f);
    Guarded clamp_scratch(clamped.max_pooled_scratch_floats(c.batch, pool));
    clamp_scratch.fill(kNaN);
    pooled.fill(kNaN);
    clamped.run_max_pooled(input.data(), pooled.data(), c.batch, pool, clamp_scratch.data(), 0);
    std::vector<float> want(expected);
    for (float& v : want) v = std::isnan(v) ? v : std::min(0.4f, std::max(-0.2f, v));
    check(identical(pooled.data(), want.data(), pooled_size), "clamped fused max pool", isa, c.name);
  }
  {
    // A post function need not commute with the pool (x -> -x does not): it runs first, staged,
    // and the pool picks its winners among the transformed values.
    kiln::Conv2dPlan posted(g, weight.data(), c.bias ? bias.data() : nullptr, c.relu);
    posted.fuse_post({[](const void*, float* v, size_t n) {
                        for (size_t i = 0; i < n; ++i) v[i] = -v[i];
                      },
                      nullptr});
    check(!posted.can_fuse_max_pool(), "a post function keeps the pool staged", isa, c.name);
    std::vector<float> negated(conv_out.data(), conv_out.data() + out_size);
    for (float& v : negated) v = -v;
    std::vector<float> want(pooled_size);
    std::vector<int32_t> want_idx(pooled_size);
    kiln::max_pool2d_forward(p, negated.data(), want.data(), want_idx.data(), 1);
    Guarded post_scratch(posted.max_pooled_scratch_floats(c.batch, pool) + 1);
    pooled.fill(kNaN);
    idx.fill(kNaN);
    posted.run_max_pooled(input.data(), pooled.data(), c.batch, pool, post_scratch.data(), 0, idx_data);
    check(identical(pooled.data(), want.data(), pooled_size) &&
              std::memcmp(idx_data, want_idx.data(), pooled_size * sizeof(int32_t)) == 0,
          "post function, then the max pool", isa, c.name);
  }
  if (!c.relu) {
    // The training entry point (no ReLU): fused on AVX-512, two steps elsewhere.
    pooled.fill(kNaN);
    idx.fill(kNaN);
    kiln::conv2d_max_pool_forward(g, c.batch, input.data(), weight.data(), c.bias ? bias.data() : nullptr, pool,
                                  pooled.data(), idx_data);
    same("conv2d_max_pool_forward");
  }
}

}  // namespace

// balance_tiles: the tiles of a plane cover it end to end, each no wider than the planned tile
// and all but the last whole 16-column units, in a multiple of the threads where it applies; and a
// convolution over such tiles gives every thread count the bits of one thread.
void test_balanced_tiles(const char* isa) {
  for (size_t plane : {size_t{784}, size_t{3136}, size_t{170}, size_t{1000}, size_t{47}}) {
    for (size_t patch : {size_t{576}, size_t{1152}, size_t{2304}}) {
      kiln::Conv2dGeometry g;
      g.in_channels = patch / 9;
      g.out_channels = 5;
      g.kernel_h = g.kernel_w = 3;
      g.in_height = g.out_height = 1;
      g.in_width = g.out_width = plane;
      g.pad_top = g.pad_bottom = 1;
      g.pad_left = g.pad_right = 1;
      const kiln::ConvTiling t = kiln::conv_tiling(g, 1);
      for (size_t threads : {size_t{2}, size_t{3}, size_t{4}, size_t{8}}) {
        const kiln::ConvTiling b = kiln::balance_tiles(t, plane, threads);
        bool ok = b.tile_begin(0, plane) == 0 && b.tile_begin(b.tiles, plane) == plane && b.items == b.tiles * b.chunks;
        for (size_t k = 0; k < b.tiles && ok; ++k) {
          const size_t j0 = b.tile_begin(k, plane), j1 = b.tile_begin(k + 1, plane);
          ok = j1 > j0 && j1 - j0 <= t.tile_cols && (j1 == plane || (j1 - j0) % 16 == 0);
        }
        if (b.balanced) ok = ok && b.tiles % threads == 0 && threads <= t.items;
        if (t.tiles % threads != 0 && threads <= t.items && t.tiles > 1 && (t.tiles + threads - 1) / threads * threads * 16 <= plane) {
          ok = ok && b.balanced;
        }
        check(ok, "balanced tiles cover the plane within the planned width", isa, "balance_tiles");
      }
    }
  }
  const Case cases[] = {
      {"plane in five tiles, stride 2", 1, 128, 56, 56, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true, false},
      {"plane in three tiles", 1, 64, 28, 28, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, true},
  };
  for (const Case& c : cases) {
    const kiln::Conv2dGeometry g = geometry(c);
    if (kiln_test::skip_under_qemu(multiply_adds(g, c.batch))) continue;
    Rng rng(c.cin * 3 + c.h);
    Guarded input(c.batch * g.in_channels * g.in_plane()), weight(g.weight_size()), bias(g.out_channels);
    input.randomize(rng);
    weight.randomize(rng);
    bias.randomize(rng);
    const kiln::Conv2dPlan plan(g, weight.data(), bias.data(), c.relu);
    const size_t out_size = c.batch * g.out_channels * g.out_plane();
    Guarded scratch(plan.scratch_floats(c.batch)), one(out_size), many(out_size);
    one.fill(kNaN);
    plan.run(input.data(), one.data(), c.batch, scratch.data(), 1);
    for (size_t threads : {size_t{2}, size_t{3}, size_t{4}}) {
      scratch.fill(kNaN);
      many.fill(kNaN);
      plan.run(input.data(), many.data(), c.batch, scratch.data(), threads);
      check(identical(one.data(), many.data(), out_size), "balanced tiles on 2-4 threads equal 1 thread bit for bit", isa, c.name);
    }
  }
}

// Which plans sum onto a residual in their GEMMs (Conv2dPlan::accumulates): the convolutions that
// run only as GEMMs over output planes, not those with a depthwise, direct, small-patch, stem or
// pixel-rows path. ResNet-50's residual convolutions and their neighbours.
void test_accumulates() {
  struct Expect {
    Case c;
    bool accumulates;
  };
  const Expect expects[] = {
      {{"1x1 64->256 on 56x56", 1, 64, 56, 56, 256, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, true, false}, true},
      {{"1x1 s2 512->1024 on 28x28", 1, 512, 28, 28, 1024, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, true, false}, true},
      {{"1x1 s2 1024->2048 on 14x14 (pixel rows)", 1, 1024, 14, 14, 2048, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, true, false}, false},
      {{"1x1 s2 256->512 on 56x56", 1, 256, 56, 56, 512, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, true, false}, true},
      {{"1x1 512->2048 on 7x7 (pixel rows)", 1, 512, 7, 7, 2048, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, true, false}, false},
      {{"3x3 p1 128->128 on 28x28", 1, 128, 28, 28, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false}, true},
      {{"3x3 unpadded 32->64 (direct)", 1, 32, 13, 13, 64, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, true, false}, false},
      {{"depthwise 3x3", 1, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32, true, false}, false},
      {{"stem 7x7/2", 1, 3, 32, 32, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, true, false}, false},
  };
  for (const Expect& e : expects) {
    const kiln::Conv2dGeometry g = geometry(e.c);
    const std::vector<float> weight(g.weight_size(), 0.5f);
    const kiln::Conv2dPlan plan(g, weight.data(), nullptr, false);
    check(plan.accumulates() == e.accumulates, e.accumulates ? "sums onto a residual in its GEMMs" : "does not accumulate",
          "any", e.c.name);
  }
}

int main() {
  test_accumulates();
  // name, batch, cin, h, w, cout, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups, bias, relu
  const Case cases[] = {
      {"1x1x1", 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, false, false},
      {"pointwise, batch 3", 3, 6, 5, 7, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, true, true},
      {"MNIST conv2, batch 5", 5, 32, 13, 13, 64, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, true, true},
      {"images share a GEMM", 19, 3, 5, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
      {"thin patch, shared GEMM", 18, 1, 6, 6, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
      {"plane in tiles, batch 1", 1, 64, 29, 17, 3, 3, 3, 1, 1, 1, 2, 1, 0, 1, 1, 1, true, true},
      {"plane in tiles, batch 2, strided", 2, 64, 33, 29, 5, 3, 3, 2, 1, 1, 1, 1, 1, 1, 2, 1, true, false},
      {"depthwise", 2, 8, 9, 11, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 8, true, false},
      {"dilated grouped, asymmetric pads", 3, 6, 11, 9, 9, 3, 2, 1, 3, 2, 0, 1, 2, 2, 3, 3, false, true},
      // Unpadded, ungrouped, stride_w 1: the AVX-512 direct path (row tiles, channel blocks).
      {"direct: MNIST conv1, batch 3", 3, 1, 28, 28, 32, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, true, true},
      {"direct: 131 channels, stride_h 2, dilated", 2, 7, 17, 23, 131, 3, 2, 2, 1, 0, 0, 0, 0, 2, 1, 1, true, false},
      {"direct: 423 taps, 37 channels", 11, 47, 9, 10, 37, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, false, true},
      {"direct: 13-wide rows, 29 channels", 2, 3, 5, 15, 29, 2, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, true, true},
      {"direct: one output pixel", 1, 5, 4, 3, 20, 4, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, true, false},
      // The planar depthwise kernel on the shapes of MobileNetV2/V3, EfficientNet-B0 and ConvNeXt,
      // then odd ones: channel multipliers, strides 3 and 2x1, dilation, asymmetric pads, 1x1 planes.
      {"depthwise 3x3 s1 112x112 (MobileNetV2)", 1, 32, 112, 112, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32, true, true},
      {"depthwise 3x3 s2 112->56 (MobileNetV2)", 1, 96, 112, 112, 96, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 96, true, false},
      {"depthwise 5x5 s2 56->28 (EfficientNet-B0)", 1, 144, 56, 56, 144, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 144, true, false},
      {"depthwise 5x5 s1 7x7, batch 2", 2, 40, 7, 7, 40, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 40, true, true},
      {"depthwise 7x7 s1 14x14 (ConvNeXt)", 1, 24, 14, 14, 24, 7, 7, 1, 1, 3, 3, 3, 3, 1, 1, 24, true, false},
      {"depthwise 3x3 s2 odd 15x9", 2, 6, 15, 9, 6, 3, 3, 2, 2, 0, 1, 1, 0, 1, 1, 6, false, false},
      {"depthwise multiplier 3, asymmetric pads", 3, 5, 13, 17, 15, 3, 3, 1, 1, 1, 0, 2, 1, 1, 1, 5, true, false},
      {"depthwise stride 3, dilated", 2, 4, 19, 23, 8, 3, 3, 3, 3, 2, 1, 0, 2, 2, 2, 4, true, true},
      {"depthwise stride 2x1, 37 wide", 1, 4, 10, 37, 4, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 4, false, true},
      {"depthwise 1x1 planes", 1, 7, 1, 1, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 7, true, false},
      {"depthwise 9x9 taps over 70 wide", 1, 3, 21, 70, 3, 9, 9, 1, 1, 4, 4, 4, 4, 1, 1, 3, true, false},
      {"depthwise 3x3 s1 7x7 960 (MobileNetV2)", 1, 960, 7, 7, 960, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 960, true, true},
      {"depthwise 3x3 s2 14->7 576 (MobileNetV2)", 1, 576, 14, 14, 576, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 576, true, false},
      {"depthwise 5x5 s1 14x14 672, batch 3", 3, 672, 14, 14, 672, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 672, false, false},
      {"depthwise 3x3 s2 odd 57x83, 19 channels", 2, 19, 57, 83, 19, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 19, true, true},
      {"depthwise 7x7 s1 150 wide, 300 rows: bands", 1, 9, 300, 150, 9, 7, 7, 1, 1, 3, 3, 3, 3, 1, 1, 9, true, false},
      // Stride 1 on short and odd rows (groups of pixels that span two and three rows), rows of
      // exactly one group, dilation, asymmetric pads, channels off the lanes, and bands.
      {"depthwise 3x3 s1 8 wide, 21 channels", 2, 21, 11, 8, 21, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 21, true, true},
      {"depthwise 3x3 s1 16x16, 16 channels", 1, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16, false, false},
      {"depthwise 3x3 s1 dilated 2, 13x17, 35 channels", 2, 35, 13, 17, 35, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 35, true, false},
      {"depthwise 5x3 s1 pads 2,0,1,2, 10x9, 5 channels", 3, 5, 10, 9, 5, 5, 3, 1, 1, 2, 0, 1, 2, 1, 1, 5, true, true},
      {"depthwise 3x3 s1 unpadded 12x12, 24 channels", 1, 24, 12, 12, 24, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 24, true, false},
      {"depthwise 3x3 s1 600x130, 3 channels: bands", 1, 3, 600, 130, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, true, true},
      // Stride-2 rows on wide outputs: MobileNetV3's and EfficientNet's first stride-2 layers,
      // widths around whole vectors (47, 48, 64, 65 and 130 output columns), odd pads and widths,
      // an odd output height (one row left for the last pass), stride 1x2 and 3x2, vertical
      // dilation, a channel multiplier, 7 wide, and pads wider than the kernel reaches.
      {"depthwise 3x3 s2 112->56, 16 channels (MobileNetV3-Small)", 2, 16, 112, 112, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 16, true, true},
      {"depthwise 5x5 s2 112->56, 7 channels", 1, 7, 112, 111, 7, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 7, true, false},
      {"depthwise 3x3 s2 47 wide out, odd rows", 1, 5, 9, 94, 5, 3, 3, 2, 2, 1, 1, 1, 0, 1, 1, 5, false, false},
      {"depthwise 3x3 s2 48 wide out", 2, 3, 7, 96, 3, 3, 3, 2, 2, 0, 1, 1, 0, 1, 1, 3, true, false},
      {"depthwise 7x7 s2 64 wide out, pad 3", 1, 17, 12, 127, 17, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 17, true, true},
      {"depthwise 5x5 s2 65 wide out, pads 1,2 / 3,0", 1, 4, 11, 131, 4, 5, 5, 2, 2, 1, 2, 3, 0, 1, 1, 4, true, false},
      {"depthwise 3x3 s1x2 130 wide out", 2, 3, 6, 259, 3, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 3, true, true},
      {"depthwise 3x3 s3x2 dilated 2x1, 51 wide out", 1, 6, 20, 101, 6, 3, 3, 3, 2, 2, 1, 2, 1, 2, 1, 6, true, false},
      {"depthwise 3x5 s2 multiplier 2, 55 wide out", 2, 3, 9, 110, 6, 3, 5, 2, 2, 1, 2, 1, 2, 1, 1, 3, true, true},
      {"depthwise 3x3 s2 pad 5, 60 wide out", 1, 2, 8, 111, 2, 3, 3, 2, 2, 5, 5, 5, 5, 1, 1, 2, false, false},
      // Stride-2 stems over few channels: on AVX-512 the strided direct kernel over a padded
      // copy, below it split into stride phases, then a stride-1 plan. ResNet's 7x7/2 on an odd
      // plane, MobileNet's 3x3/2, odd ones.
      {"stem: 7x7/2 3->16, odd plane", 2, 3, 37, 41, 16, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, true, true},
      {"stem: 3x3/2 3->32", 3, 3, 32, 31, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true, false},
      {"stem: 5x5/2, 1 channel, asymmetric pads", 2, 1, 19, 14, 70, 5, 5, 2, 2, 2, 0, 1, 2, 1, 1, 1, false, false},
      {"stem: 3x3/2 unpadded 4->9", 1, 4, 13, 12, 9, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1, true, true},
      {"stem: 7x7/2 3->64 (ResNet) on 64x64", 1, 3, 64, 64, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, false, true},
      // Unpadded stride-2 convolutions over more channels: the strided direct kernel on AVX-512.
      {"direct stride 2: 3x3/2 unpadded 8->20", 2, 8, 15, 17, 20, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1, true, false},
      {"direct stride 1x2: 5x3 unpadded 6->70", 1, 6, 11, 20, 70, 5, 3, 1, 2, 0, 0, 0, 0, 1, 1, 1, false, true},
      // Stride 2 across column tiles: row pieces through the table's gather_even.
      {"plane in tiles, stride 2", 1, 64, 61, 59, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true, false},
      {"plane in tiles, stride 2, dilated 5x5, batch 2", 2, 40, 45, 67, 9, 5, 5, 2, 2, 2, 3, 1, 0, 2, 2, 1, false, true},
      // Small planes with >= 64 output channels per group: the pixels in the GEMM's rows, the
      // channels in its lanes (a pointwise one only on planes that fill less than 80% of 32-wide
      // tiles). ResNet-50's 1x1/2 downsample and its 7x7 3x3; pointwise grouped (70 channels a
      // group, off the vector width); a patch whose columns pass the budget (a plane
      // in rows is never cut into tiles); several images sharing a GEMM.
      {"pixels in rows: 1x1/2 96->80 on 14x14", 1, 96, 14, 14, 80, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, true, true},
      {"pixels in rows: 3x3 7x7 48->64, batch 3", 3, 48, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
      {"pixels in rows: pointwise 7x7 40->140, 2 groups", 2, 40, 7, 7, 140, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, true, true},
      {"pixels in rows: 3x3 14x14 256->64, whole plane past the column budget", 1, 256, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, true},
      {"pixels in rows: 3x3 5x5 33->97, batch 9 shares GEMMs", 9, 33, 5, 5, 97, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false},
      {"pixels in rows: 3x3/2 9x11 20->65, batch 4", 4, 20, 9, 11, 65, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, false, false},
      // One image on all threads: bands of pixel rows (im2col, GEMM rows, transpose), or with at
      // least as many output channels as pixels, parts of the channels (the im2col split by
      // input channels, then the GEMM and transpose by output channels). 13x13, 10x10, 5x5 planes
      // are not whole 12-row tiles; 100 channels are not whole 32-column tiles; 2 groups make two
      // threaded GEMMs.
      {"pixels in rows: 3x3 13x13 48->64, one image in bands", 1, 48, 13, 13, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
      {"pixels in rows: pointwise 10x10 40->160, 2 groups, one image in bands", 1, 40, 10, 10, 160, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, true, false},
      {"pixels in rows: 3x3 5x5 37->100, one image by channels", 1, 37, 5, 5, 100, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
      {"pixels in rows: pointwise 6x6 48->260, 2 groups, one image by channels", 1, 48, 6, 6, 260, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, false, false},
      // One image whose plane is cut into 3 and 5 column tiles: on 2 threads, 4 and 6 (balance_tiles).
      {"plane in three tiles, batch 1", 1, 64, 28, 28, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
      {"plane in five tiles, stride 2, batch 1", 1, 128, 56, 56, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true, false},
      // Padded stride-2 convolutions over more channels: on AVX-512 the direct kernel over a
      // zero-padded copy (DetHead's 3x3/2 16->32, ResNet-18's 64->128), odd planes, asymmetric
      // pads, a 5x5 window, channels off the vectors; past the direct kernel's patch, im2col.
      {"padded stride 2: 3x3/2 16->32, batch 3", 3, 16, 29, 31, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true, true},
      {"padded stride 2: 3x3/2 64->70, odd plane", 1, 64, 23, 19, 70, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, false, false},
      {"padded stride 2: 5x5/2 12->40, pads 2,1,0,2", 2, 12, 17, 15, 40, 5, 5, 2, 2, 2, 1, 0, 2, 1, 1, 1, true, false},
      {"padded stride 2: 3x3/2 120->24, patch past the direct kernel", 1, 120, 15, 15, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true, true},
      // Residual blocks' GEMM-only convolutions (Conv2dPlan::accumulates): pointwise over planes of
      // several column tiles, 1x1 stride 2 on im2col, a small plane, padded 3x3s on im2col, one
      // of them over small planes whose images share a GEMM.
      {"residual: 1x1 64->96 on 23x21, batch 2", 2, 64, 23, 21, 96, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, true, true},
      {"residual: 1x1 s2 40->48 on 30x29, batch 3", 3, 40, 30, 29, 48, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, true, false},
      {"residual: 1x1 40->48 on 7x7, batch 5", 5, 40, 7, 7, 48, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, false, true},
      {"residual: 3x3 p1 96->40 on 20x20, batch 2", 2, 96, 20, 20, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
      {"residual: 3x3 p1 24->40 on 6x7, batch 17, images share a GEMM", 17, 24, 6, 7, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true},
  };
  // Conv case, then a max pool over its output: kernel, stride, dilation (h, w).
  // Without ReLU: the training forward (conv2d_max_pool_forward) is checked too.
  Case conv1_plain = cases[9], conv2_plain = cases[2];
  conv1_plain.relu = conv2_plain.relu = false;
  // The article's padded SeedCNN conv1 (MNIST and CIFAR): the small-patch kernel on padded copies.
  const Case padded_mnist = {"padded small patch: MNIST conv1", 3, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, true};
  const Case padded_cifar = {"padded small patch: CIFAR conv1", 2, 3, 32, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true, false};
  const Case padded_odd = {"padded small patch: 5x5, asymmetric", 2, 1, 9, 14, 7, 5, 5, 1, 1, 2, 1, 0, 3, 1, 1, 1, false, false};
  const PoolCase pools[] = {
      {padded_mnist, 2, 2, 2, 2, 1, 1, true},
      {padded_cifar, 2, 2, 2, 2, 1, 1, false},
      {padded_odd, 3, 2, 2, 1, 1, 1, false},
      // SqueezeNet's 3x3/2 stem and its 3x3/2 pool; ResNet's padded 7x7/2 stem and 3x3/2 pool.
      {{"stem + pool", 2, 3, 29, 27, 24, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1, true, true}, 3, 3, 2, 2, 1, 1, false},
      {{"padded stem + pool", 1, 3, 40, 38, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, true, true}, 3, 3, 2, 2, 1, 1, true},
      // A plane large enough for the fused pool to run in bands whose shared rows carry over.
      {{"stem + pool in bands", 1, 3, 150, 151, 64, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1, true, true}, 3, 3, 2, 2, 1, 1, true},
      {conv1_plain, 2, 2, 2, 2, 1, 1, true},
      {conv2_plain, 2, 2, 2, 2, 1, 1, true},
      {cases[2], 2, 2, 2, 2, 1, 1, true},
      {cases[9], 2, 2, 2, 2, 1, 1, true},
      {cases[10], 3, 2, 1, 3, 1, 2, false},
      {cases[11], 2, 3, 3, 2, 2, 1, false},
      {cases[12], 1, 1, 1, 1, 1, 1, true},
      {cases[10], 2, 2, 3, 3, 1, 1, false},  // rows and columns no window reads
      // Windows past the output, fused by the direct kernels only: ResNet's padded 3x3/2 pool
      // after its stem, GoogLeNet's ceil-mode one, and odd ones (a 2x2 window whose edge windows
      // see one row, dilated and padded, padding on one axis only), a NaN in some.
      {{"ResNet stem + padded pool", 2, 3, 45, 38, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, true, true}, 3, 3, 2, 2, 1, 1, true, 1, 1},
      {{"GoogLeNet stem + ceil pool", 1, 3, 42, 40, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, true, true}, 3, 3, 2, 2, 1, 1, false, 0, 0, true},
      {{"stem + padded pool in bands", 1, 3, 150, 151, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, true, true}, 3, 3, 2, 2, 1, 1, true, 1, 1},
      {cases[2], 3, 3, 2, 2, 1, 1, true, 1, 1},
      {cases[2], 2, 2, 2, 2, 1, 1, false, 1, 1},
      {cases[9], 2, 2, 1, 2, 2, 1, false, 1, 0, true},
      {cases[11], 3, 2, 2, 1, 1, 1, true, 0, 1, true},
      {conv2_plain, 3, 3, 2, 2, 1, 1, false, 1, 1, true},
  };
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    kiln::set_active_isa(isa);
    g_block_cases = 0;
    g_stride2_cases = 0;
    for (const Case& c : cases) {
      run_case(c, kiln::isa_name(isa));
      run_depthwise_paths(c, kiln::isa_name(isa));
    }
    test_balanced_tiles(kiln::isa_name(isa));
    check(g_block_cases >= 10 || kiln::dispatch().f32_conv.depthwise.channel_block == nullptr,
          "the depthwise cases ran the channel blocks", kiln::isa_name(isa), "all");
    check(g_stride2_cases >= (kiln_test::under_qemu() ? 12u : 16u) || kiln::dispatch().f32_conv.depthwise.stride2_rows == nullptr,
          "the depthwise cases ran the stride-2 rows", kiln::isa_name(isa), "all");
    const MaxPoolCase max_pools[] = {
        // GoogLeNet's pools (3x3/1 padded in the inception branches, 3x3/2 and 2x2/2 with ceil
        // mode between stages), then odd ones: plane counts off the lanes, dilation, asymmetric
        // pads, and a plane large enough to run in bands.
        {"googlenet 3x3/1 p1 480 x 14x14", 480, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},
        {"googlenet 3x3/2 ceil 480 x 28x28", 480, 28, 28, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, true},
        {"googlenet 2x2/2 ceil 832 x 14x14", 832, 14, 14, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, true},
        {"squeezenet 3x3/2 ceil 64 x 55x55", 64, 55, 55, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, true},
        {"19 planes, 3x2 window, stride 1x2, pads 1,0,0,1", 19, 9, 13, 3, 2, 1, 2, 1, 0, 0, 1, 1, 1, false},
        {"7 planes, dilated 3x3, 1x1 plane out", 7, 5, 5, 3, 3, 1, 1, 0, 0, 0, 0, 2, 2, false},
        {"9 planes 300x150 3x3/2: bands", 9, 300, 150, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false},
        // Stride 1: rows of 9 and 23, a dilated window, and bands.
        {"23 planes 3x3/1 p1 12x9", 23, 12, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},
        {"5 planes dilated 3x3/1 p2 15x23", 5, 15, 23, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, false},
        {"3 planes 3x3/1 p1 600x130: bands", 3, 600, 130, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},
    };
    for (const MaxPoolCase& c : max_pools) run_max_pool_paths(c, kiln::isa_name(isa));
    const MaxPoolCase avg_pools[] = {
        // DenseNet's transitions (2x2/2 on 56x56 and 28x28), GoogLeNet's 5x5/3 auxiliary pool,
        // then padded, ceil-mode, dilated and odd windows and strides 1 to 3.
        {"densenet 2x2/2 128 x 56x56", 128, 56, 56, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false},
        {"densenet 2x2/2 odd 37 x 29x29", 37, 29, 29, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, false},
        {"5x5/3 19 x 14x14", 19, 14, 14, 5, 5, 3, 3, 0, 0, 0, 0, 1, 1, false},
        {"3x3/1 p1 21 x 17x40", 21, 17, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false},
        {"3x3/2 ceil p1 5 x 30x47", 5, 30, 47, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true},
        {"3x2 window, stride 1x2, pads 1,0,0,1", 19, 9, 13, 3, 2, 1, 2, 1, 0, 0, 1, 1, 1, false},
        {"dilated 3x3, pads 2", 7, 11, 35, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, false},
        {"window wider than the plane with pads", 3, 4, 3, 3, 4, 1, 1, 1, 2, 1, 1, 1, 1, false},
        {"1x7 stride 2x3 ceil", 4, 6, 50, 1, 7, 2, 3, 0, 3, 0, 3, 1, 1, true},
    };
    for (const MaxPoolCase& c : avg_pools) run_avg_pool(c, kiln::isa_name(isa));
    for (const Case& c : {padded_mnist, padded_cifar, padded_odd}) run_case(c, kiln::isa_name(isa));
    for (const PoolCase& p : pools) run_pool_case(p, kiln::isa_name(isa));
  }
  return kiln_test::finish("conv-test: ");
}
