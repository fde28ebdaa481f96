// Sparse int8 conv and GEMM (kiln/s8-sparse.h) against the DENSE int8 kernels, bit for bit:
// S8SparseConv == S8Conv2dPlan (+ max_pool2d_u8_nhwc for the fused 2x2/2 pool) and S8SparseGemm ==
// s8gemm_requantize / s8gemm_dequantize on the same weights, over zero fractions 0 .. 1 (1x4-block
// and unstructured masks), odd shapes (input channels not a multiple of 4, odd sizes, padding,
// dilation, 1x1 and 5x5, planes larger than a register tile), zero points 0 and not, ReLU on/off,
// on every ISA level the CPU has and the forced AVX-VNNI kernels, with 1 and 2 threads. Inputs,
// outputs and scratch (sized by scratch_bytes alone) end at an inaccessible page; outputs start as
// two different sentinels over two runs, so an output a kernel forgets to write fails.
// Exit code 1 on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/s8-conv.h"
#include "kiln/s8-gemm.h"
#include "kiln/s8-sparse.h"
#include "kiln/thread-pool.h"

#include "check.h"
#include "s8-paths.h"
#include "test-util.h"

namespace {

using kiln_test::all_paths;
using kiln_test::check;
using kiln_test::Guarded;
using kiln_test::Path;
using kiln_test::path_name;
using kiln_test::Rng;
using kiln_test::select;

kiln::Conv2dGeometry geometry(size_t c, size_t h, size_t w, size_t o, size_t kh, size_t kw, size_t pt, size_t pl,
                              size_t pb, size_t pr, size_t dh, size_t dw) {
  kiln::Conv2dGeometry g;
  g.in_channels = c, g.in_height = h, g.in_width = w, g.out_channels = o;
  g.kernel_h = kh, g.kernel_w = kw, g.stride_h = 1, g.stride_w = 1;
  g.pad_top = pt, g.pad_left = pl, g.pad_bottom = pb, g.pad_right = pr;
  g.dilation_h = dh, g.dilation_w = dw, g.groups = 1;
  g.out_height = kiln::window_output_size(h, pt, pb, kh, 1, dh);
  g.out_width = kiln::window_output_size(w, pl, pr, kw, 1, dw);
  return g;
}

enum class Mask { kBlock, kUnstructured };

// Zeroes about `fraction` of W: whole 1x4 blocks of the reduction order (4 consecutive input
// channels at one kernel position of one output; `block` = 4 consecutive reduction steps for a
// GEMM row), or single weights. W's other values are non-zero, so the fraction is what it says.
void sparsify(std::vector<int8_t>& w, size_t rows, size_t c, size_t taps, double fraction, Mask mask, Rng& rng) {
  for (int8_t& v : w) {
    if (v == 0) v = 1;
  }
  const auto drop = [&] { return static_cast<double>(rng.next() >> 11) / 9007199254740992.0 < fraction; };
  if (mask == Mask::kUnstructured) {
    for (int8_t& v : w) {
      if (drop()) v = 0;
    }
    return;
  }
  // OIHW (GEMM: taps = 1, c = K): element (r, ci, t) at (r * c + ci) * taps + t.
  for (size_t r = 0; r < rows; ++r) {
    for (size_t t = 0; t < taps; ++t) {
      for (size_t c0 = 0; c0 < c; c0 += 4) {
        if (!drop()) continue;
        for (size_t ci = c0; ci < c0 + 4 && ci < c; ++ci) w[(r * c + ci) * taps + t] = 0;
      }
    }
  }
}

struct ConvCase {
  const char* name;
  kiln::Conv2dGeometry g;
  bool pool;
};

void fill_random(uint8_t* p, size_t n, Rng& rng) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng.next() >> 56);
}

void conv_case(const ConvCase& cc, double fraction, Mask mask, uint8_t x_zp, uint8_t y_zp, bool relu, Rng& rng) {
  const kiln::Conv2dGeometry& g = cc.g;
  const size_t taps = g.kernel_h * g.kernel_w, k = g.in_channels * taps;
  std::vector<int8_t> w(g.out_channels * k);
  for (int8_t& v : w) v = static_cast<int8_t>(rng.next() >> 56);
  sparsify(w, g.out_channels, g.in_channels, taps, fraction, mask, rng);
  std::vector<int32_t> bias(g.out_channels);
  for (int32_t& b : bias) b = static_cast<int32_t>(rng.below(200001)) - 100000;
  // Multipliers spread the outputs over the uint8 range: |acc| ~ sqrt(k) * 74 * 74.
  std::vector<float> w_scale(g.out_channels);
  for (float& s : w_scale) s = rng.uniform(0.5f, 1.5f) / (std::sqrt(static_cast<float>(k)) * 5000.0f) * 60.0f;
  kiln::S8ConvQuant q;
  q.x_zero_point = x_zp;
  q.w_scale = w_scale.data();
  q.w_scale_count = g.out_channels;
  q.x_scale = 0.5f;
  q.y_scale = 0.5f;
  q.y_zero_point = y_zp;
  q.y_min = relu ? y_zp : 0;
  q.y_max = 255;

  const size_t batch = 3;
  const size_t oh = cc.pool ? g.out_height / 2 : g.out_height, ow = cc.pool ? g.out_width / 2 : g.out_width;
  const size_t in_image = g.in_height * g.in_width * g.in_channels, out_image = oh * ow * g.out_channels;
  Guarded<uint8_t> x(batch * in_image);
  fill_random(x.data(), x.size(), rng);

  // The dense reference (S8Conv2dPlan on the active table, then the uint8 pool).
  std::vector<uint8_t> want(batch * out_image);
  {
    kiln::S8Conv2dPlan dense(g, w.data(), bias.data(), q, false);
    std::vector<uint8_t> scratch(dense.scratch_bytes(batch, 1) + 1);
    std::vector<uint8_t> conv(batch * g.out_plane() * g.out_channels);
    dense.run(x.data(), conv.data(), batch, scratch.data(), 1);
    if (cc.pool) {
      kiln::Pool2dGeometry pg;
      pg.in_height = g.out_height, pg.in_width = g.out_width, pg.out_height = oh, pg.out_width = ow;
      pg.kernel_h = pg.kernel_w = pg.stride_h = pg.stride_w = 2;
      kiln::max_pool2d_u8_nhwc(pg, batch, g.out_channels, conv.data(), want.data(), 1);
    } else {
      want = conv;
    }
  }

  kiln::S8SparseConv sparse(g, w.data(), bias.data(), q, cc.pool);
  const std::string what = std::string(cc.name) + " zeros " + std::to_string(fraction) +
                           (mask == Mask::kBlock ? " 1x4" : " unstructured") + " xzp " + std::to_string(x_zp) +
                           " yzp " + std::to_string(y_zp) + (relu ? " relu" : "");
  if (mask == Mask::kBlock && fraction == 1.0) check(sparse.packed().blocks() == 0, what + ": no block stored");
  if (mask == Mask::kBlock && fraction == 0.0) {
    check(sparse.packed().blocks() == g.out_channels * taps * ((g.in_channels + 3) / 4), what + ": every block stored");
  }
  for (const Path& p : all_paths()) {
    select(p);
    for (size_t threads : {size_t{1}, size_t{2}}) {
      Guarded<uint8_t> scratch(sparse.scratch_bytes(batch, threads) + 1);
      Guarded<uint8_t> y(batch * out_image);
      bool same = true;
      for (uint8_t sentinel : {uint8_t{0x5A}, uint8_t{0xA5}}) {
        y.fill(sentinel);
        sparse.run(x.data(), y.data(), batch, scratch.data(), threads);
        same = same && std::memcmp(y.data(), want.data(), want.size()) == 0;
      }
      check(same, what + " on " + path_name(p) + " threads " + std::to_string(threads));
    }
  }
  select(all_paths().front());
}

void conv_tests() {
  Rng rng(0x5eed5);
  const ConvCase cases[] = {
      {"mnist conv2 32x13x13 3x3 -> 64 + pool", geometry(32, 13, 13, 64, 3, 3, 0, 0, 0, 0, 1, 1), true},
      {"mnist conv2 no pool", geometry(32, 13, 13, 64, 3, 3, 0, 0, 0, 0, 1, 1), false},
      {"cifar conv2 32x15x15 -> 64 + pool", geometry(32, 15, 15, 64, 3, 3, 0, 0, 0, 0, 1, 1), true},
      {"c3 odd 9x7 pad 1", geometry(3, 9, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1), false},
      {"c5 odd 9x7 pad asym + pool", geometry(5, 9, 7, 6, 3, 3, 1, 2, 0, 1, 1, 1), true},
      {"c7 dilation 2x3", geometry(7, 11, 12, 9, 3, 3, 2, 1, 1, 2, 2, 3), false},
      {"c6 1x1", geometry(6, 5, 9, 7, 1, 1, 0, 0, 0, 0, 1, 1), false},
      {"c8 5x5 pad 2 + pool", geometry(8, 10, 11, 17, 5, 5, 2, 2, 2, 2, 1, 1), true},
      {"c4 40x38 pad 1: plane over a tile", geometry(4, 40, 38, 3, 3, 3, 1, 1, 1, 1, 1, 1), false},
      {"c9 33x31 pad 1 + pool: plane over a tile", geometry(9, 33, 31, 5, 3, 3, 1, 1, 1, 1, 1, 1), true},
      {"c1 3x3 kernel = input", geometry(1, 3, 3, 2, 3, 3, 0, 0, 0, 0, 1, 1), false},
      // Layouts of the AVX-512 kernel: pitch 16 (the 5x5 keeps the plain layout), 20 and 13 with
      // the pool in registers, and 7x7 (pitch 10 + 6 = 16 plain).
      {"c12 6x16 5x5 pad 2 + pool: pitch 20", geometry(12, 6, 16, 19, 5, 5, 2, 2, 2, 2, 1, 1), true},
      {"c4 8x9 5x5 pad 2 + pool: pitch 13", geometry(4, 8, 9, 16, 5, 5, 2, 2, 2, 2, 1, 1), true},
      {"c16 10x10 7x7 pad 3 + pool", geometry(16, 10, 10, 33, 7, 7, 3, 3, 3, 3, 1, 1), true},
      // More than 8 and more than 16 channel groups (the AVX-512 input rewrite's other loops).
      {"c40 7x18 pad 1", geometry(40, 7, 18, 8, 3, 3, 1, 1, 1, 1, 1, 1), false},
      {"c72 5x6 + pool", geometry(72, 5, 6, 20, 3, 3, 0, 0, 0, 0, 1, 1), true},
  };
  for (const ConvCase& cc : cases) {
    for (double fraction : {0.0, 0.5, 0.9, 0.99, 1.0}) {
      for (Mask mask : {Mask::kBlock, Mask::kUnstructured}) {
        const bool first = fraction == 0.0 && mask == Mask::kBlock;
        // Every case with a zero point and ReLU; the first also with zero points 0 and no ReLU.
        conv_case(cc, fraction, mask, 37, 128, true, rng);
        if (first) {
          conv_case(cc, fraction, mask, 0, 0, false, rng);
          conv_case(cc, fraction, mask, 255, 3, false, rng);
        }
      }
    }
  }
}

void gemm_case(size_t k, size_t n, size_t batch, bool trans, double fraction, Mask mask, uint8_t a_zp, bool float_out,
               uint8_t y_zp, bool relu, Rng& rng) {
  std::vector<int8_t> wt(n * k);  // N x K
  for (int8_t& v : wt) v = static_cast<int8_t>(rng.next() >> 56);
  sparsify(wt, n, k, 1, fraction, mask, rng);
  std::vector<int8_t> w(n * k);  // as the op receives it
  for (size_t j = 0; j < n; ++j) {
    for (size_t p = 0; p < k; ++p) w[trans ? j * k + p : p * n + j] = wt[j * k + p];
  }
  std::vector<int32_t> bias(n);
  for (int32_t& b : bias) b = static_cast<int32_t>(rng.below(200001)) - 100000;
  std::vector<float> scale(n);
  for (float& s : scale) s = rng.uniform(0.5f, 1.5f) / (std::sqrt(static_cast<float>(k)) * 5000.0f) * 60.0f;
  Guarded<uint8_t> a(batch * k);
  fill_random(a.data(), a.size(), rng);
  const uint8_t y_min = relu ? y_zp : 0;

  const size_t out_bytes = batch * n * (float_out ? 4 : 1);
  std::vector<uint8_t> want(out_bytes);
  {
    kiln::PackedS8B packed(trans, k, n, w.data(), trans ? k : n);
    if (float_out) {
      kiln::S8Dequantization dq;
      dq.scale = scale.data();
      kiln::s8gemm_dequantize(batch, a.data(), k, a_zp, packed, bias.data(), dq, reinterpret_cast<float*>(want.data()), n, 1);
    } else {
      kiln::S8Requantization rq;
      rq.scale = scale.data();
      rq.zero_point = y_zp;
      rq.min = y_min;
      rq.max = 255;
      kiln::s8gemm_requantize(batch, a.data(), k, a_zp, packed, bias.data(), rq, want.data(), n, 1);
    }
  }
  kiln::S8SparseGemm sparse(k, n, w.data(), trans, bias.data(), scale.data(), a_zp, float_out, y_zp, y_min, 255);
  const std::string what = "gemm " + std::to_string(k) + "->" + std::to_string(n) + " batch " + std::to_string(batch) +
                           (trans ? " transB" : "") + " zeros " + std::to_string(fraction) +
                           (mask == Mask::kBlock ? " 1x4" : " unstructured") + " azp " + std::to_string(a_zp) +
                           (float_out ? " f32" : " u8") + (relu ? " relu" : "");
  for (const Path& p : all_paths()) {
    select(p);
    for (size_t threads : {size_t{1}, size_t{2}}) {
      Guarded<uint8_t> scratch(sparse.scratch_bytes(batch, threads) + 1);
      Guarded<uint8_t> y(out_bytes);
      bool same = true;
      for (uint8_t sentinel : {uint8_t{0x5A}, uint8_t{0xA5}}) {
        y.fill(sentinel);
        sparse.run(a.data(), y.data(), batch, scratch.data(), threads);
        same = same && std::memcmp(y.data(), want.data(), out_bytes) == 0;
      }
      check(same, what + " on " + path_name(p) + " threads " + std::to_string(threads));
    }
  }
  select(all_paths().front());
}

void gemm_tests() {
  Rng rng(0x9e3779);
  struct Shape {
    size_t k, n;
  };
  for (Shape s : {Shape{1600, 128}, Shape{30, 10}, Shape{7, 3}, Shape{64, 33}}) {
    for (size_t batch : {size_t{1}, size_t{5}, size_t{8}, size_t{64}, size_t{67}}) {
      for (double fraction : {0.0, 0.5, 0.9, 0.99, 1.0}) {
        for (Mask mask : {Mask::kBlock, Mask::kUnstructured}) {
          gemm_case(s.k, s.n, batch, true, fraction, mask, 37, false, 128, true, rng);
          if (fraction == 0.9) {
            gemm_case(s.k, s.n, batch, false, fraction, mask, 0, false, 0, false, rng);
            gemm_case(s.k, s.n, batch, true, fraction, mask, 200, true, 0, false, rng);
          }
        }
      }
    }
  }
}

// Kernel choice: each path runs its own sparse kernels (a silently shared scalar fallback would
// make the per-ISA checks above vacuous).
void kernel_names() {
  for (const Path& p : all_paths()) {
    const kiln::DispatchTable* t = kiln::dispatch_for(p.isa);
    select(p);
    const std::string name = kiln::s8_sparse_kernels(*t).name;
    std::string want = "scalar";
    if (p.avxvnni) {
      want = "avxvnni";
    } else if (p.isa == kiln::Isa::kAvx512Vnni) {
      want = "avx512vnni";
    } else if (p.isa >= kiln::Isa::kAvx2) {
      want = kiln::cpu_features().avxvnni && !kiln::cpu_features().avx512vnni ? "avxvnni" : "avx2";
    }
    check(name == want, "sparse kernels on " + path_name(p) + ": " + name + ", expected " + want);
  }
  select(all_paths().front());
}

void rejects() {
  std::vector<int8_t> w(4 * 4 * 9, 1);
  std::vector<float> ws(4, 0.01f);
  kiln::S8ConvQuant q;
  q.w_scale = ws.data();
  q.w_scale_count = 4;
  kiln::Conv2dGeometry g = geometry(4, 8, 8, 4, 3, 3, 0, 0, 0, 0, 1, 1);
  check(kiln::S8SparseConv::fits(g, q, true), "fits: plain 3x3");
  kiln::Conv2dGeometry s2 = g;
  s2.stride_h = 2;
  s2.out_height = kiln::window_output_size(8, 0, 0, 3, 2, 1);
  check(!kiln::S8SparseConv::fits(s2, q, false), "fits: stride 2 rejected");
  bool threw = false;
  try {
    kiln::S8SparseConv bad(s2, w.data(), nullptr, q, false);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "S8SparseConv throws invalid_argument on stride 2");
  ws[2] = -0.01f;  // a negative multiplier: pooling before requantizing would not be exact
  check(!kiln::S8SparseConv::fits(g, q, true), "fits: negative multiplier with pool rejected");
  check(kiln::S8SparseConv::fits(g, q, false), "fits: negative multiplier without pool");
  threw = false;
  try {
    kiln::PackedSparseS8 bad(2, 8, w.data(), 4);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "PackedSparseS8 throws on ldw < depth");
}

}  // namespace

int main() {
  kiln::set_num_threads(2);
  kernel_names();
  rejects();
  conv_tests();
  gemm_tests();
  return kiln_test::finish("s8-sparse-test: ");
}
