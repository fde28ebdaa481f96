// fp32 GEMM against the float64 oracle on every ISA this CPU has.
//
// Every operand sits at the very end of a readable mapping followed by an inaccessible page, so a
// read or write past the end crashes the test instead of passing silently. Gaps between rows
// (lda/ldb/ldc larger than needed) hold NaN in A and B (a stray read poisons the result) and a
// sentinel in C (a stray write shows). C starts as NaN when beta == 0, so an unwritten element or
// a leaked old value fails. Exit code 1 on any failure.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/f32-gemm.h"
#include "kiln/thread-pool.h"

#include "check.h"
#include "common/dispatch.h"
#include "f32-gemm/f32-gemm-ukernel.h"
#include "test-util.h"

namespace {

using kiln_test::Rng;
using GuardedBuffer = kiln_test::Guarded<float>;

using kiln::BiasMode;
using kiln::GemmEpilogue;

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kGapSentinel = -12345.0f;

using kiln_test::check;
using kiln_test::g_failed;
using kiln_test::g_passed;



struct Case {
  bool trans_a = false, trans_b = false;
  size_t m = 1, n = 1, k = 1;
  float alpha = 1.0f, beta = 0.0f;
  BiasMode bias_mode = BiasMode::kNone;
  bool relu = false;
  bool clamp = false;  // to [-0.5, 0.75] after ReLU
  bool accumulate = false;  // the epilogue adds C's old content (beta + 1; a residual summed onto)
  size_t pad_a = 0, pad_b = 0, pad_c = 0;  // extra elements per row beyond the minimum
  size_t threads = 1;
  enum Variant { kPlain, kPackedA, kPackedB } variant = kPlain;
  kiln::Isa pack_isa = kiln::Isa::kScalar;  // ISA active while packing (packed variants)
  bool nan_in_a = false;  // op(A)(m / 2, k / 2) is NaN: that row of C must come out NaN, ReLU or not
};

std::string describe(const Case& c) {
  char buf[320];
  std::snprintf(buf, sizeof(buf),
                "isa=%s variant=%d packed_under=%s tA=%d tB=%d m=%zu n=%zu k=%zu alpha=%g beta=%g acc=%d bias=%d "
                "relu=%d clamp=%d pads=%zu/%zu/%zu threads=%zu",
                kiln::isa_name(kiln::active_isa()), static_cast<int>(c.variant), kiln::isa_name(c.pack_isa),
                c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, c.beta, c.accumulate, static_cast<int>(c.bias_mode), c.relu, c.clamp,
                c.pad_a, c.pad_b, c.pad_c, c.threads);
  return buf;
}

// A row-major matrix of `rows` x `cols` with leading dimension cols + pad; gaps hold `gap`.
size_t extent(size_t rows, size_t cols, size_t ld) { return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols; }

// The buffer ends right after the last row's last element (extent()).
void fill_matrix(float* p, size_t rows, size_t cols, size_t ld, Rng& rng, float gap) {
  const size_t end = extent(rows, cols, ld);
  for (size_t at = 0; at < end; ++at) p[at] = at % ld < cols ? rng.uniform() : gap;
}

// Runs one case on the active ISA and compares with the oracle. Returns the output for
// determinism checks.
std::vector<float> run_case(const Case& cs, uint64_t seed) {
  Rng rng(seed);
  const size_t a_rows = cs.trans_a ? cs.k : cs.m, a_cols = cs.trans_a ? cs.m : cs.k;
  const size_t b_rows = cs.trans_b ? cs.n : cs.k, b_cols = cs.trans_b ? cs.k : cs.n;
  const size_t lda = a_cols + cs.pad_a, ldb = b_cols + cs.pad_b, ldc = cs.n + cs.pad_c;
  GuardedBuffer a(std::max<size_t>(1, extent(a_rows, a_cols, lda)));
  GuardedBuffer b(std::max<size_t>(1, extent(b_rows, b_cols, ldb)));
  GuardedBuffer c(std::max<size_t>(1, extent(cs.m, cs.n, ldc)));
  fill_matrix(a.data(), a_rows, a_cols, lda, rng, kNaN);
  fill_matrix(b.data(), b_rows, b_cols, ldb, rng, kNaN);
  if (cs.nan_in_a) {
    const size_t i = cs.m / 2, p = cs.k / 2;
    a.data()[cs.trans_a ? p * lda + i : i * lda + p] = kNaN;
  }
  const bool write_only = (cs.variant != Case::kPlain || cs.beta == 0.0f) && !cs.accumulate;
  Rng c_rng(seed ^ 0xC0FFEE);
  fill_matrix(c.data(), cs.m, cs.n, ldc, c_rng, kGapSentinel);
  std::vector<float> c_old(c.data(), c.data() + c.size());
  if (write_only) {
    for (size_t i = 0; i < cs.m; ++i)
      for (size_t j = 0; j < cs.n; ++j) c.data()[i * ldc + j] = kNaN;
  }
  const size_t bias_len = cs.bias_mode == BiasMode::kPerRow ? cs.m : cs.n;
  GuardedBuffer bias(std::max<size_t>(1, bias_len));
  for (size_t i = 0; i < bias_len; ++i) bias.data()[i] = rng.uniform();
  GemmEpilogue ep;
  ep.bias_mode = cs.bias_mode;
  ep.bias = cs.bias_mode == BiasMode::kNone ? nullptr : bias.data();
  ep.relu = cs.relu;
  ep.clamp = cs.clamp;
  ep.clamp_lo = -0.5f;
  ep.clamp_hi = 0.75f;
  ep.accumulate = cs.accumulate;

  const float alpha = cs.variant == Case::kPlain ? cs.alpha : 1.0f;
  const float beta = cs.variant == Case::kPlain ? cs.beta : 0.0f;
  switch (cs.variant) {
    case Case::kPlain:
      kiln::sgemm(cs.trans_a, cs.trans_b, cs.m, cs.n, cs.k, alpha, a.data(), lda, b.data(), ldb, beta,
                  c.data(), ldc, ep, cs.threads);
      break;
    case Case::kPackedA: {
      const kiln::Isa use = kiln::active_isa();
      kiln::set_active_isa(cs.pack_isa);
      kiln::PackedA pa(cs.trans_a, cs.m, cs.k, a.data(), lda);
      kiln::set_active_isa(use);
      kiln::sgemm_packed_a(pa, cs.n, cs.trans_b, b.data(), ldb, c.data(), ldc, ep, cs.threads);
      break;
    }
    case Case::kPackedB: {
      const kiln::Isa use = kiln::active_isa();
      kiln::set_active_isa(cs.pack_isa);
      kiln::PackedB pb(cs.trans_b, cs.k, cs.n, b.data(), ldb);
      kiln::set_active_isa(use);
      kiln::sgemm_packed_b(cs.m, cs.trans_a, a.data(), lda, pb, c.data(), ldc, ep, cs.threads);
      break;
    }
  }

  // Oracle, and the same sum over magnitudes for the error bound.
  std::vector<float> ref(c_old), mag(c_old);
  kiln::sgemm_naive(cs.trans_a, cs.trans_b, cs.m, cs.n, cs.k, alpha, a.data(), lda, b.data(), ldb, beta,
                    ref.data(), ldc, ep);
  std::vector<float> abs_a(a.data(), a.data() + a.size()), abs_b(b.data(), b.data() + b.size());
  std::vector<float> abs_bias(bias.data(), bias.data() + bias.size());
  for (float& v : abs_a) v = std::fabs(v);
  for (float& v : abs_b) v = std::fabs(v);
  for (float& v : abs_bias) v = std::fabs(v);
  for (float& v : mag) v = std::fabs(v);
  GemmEpilogue abs_ep = ep;
  abs_ep.bias = ep.bias ? abs_bias.data() : nullptr;
  abs_ep.relu = false;
  abs_ep.clamp = false;
  kiln::sgemm_naive(cs.trans_a, cs.trans_b, cs.m, cs.n, cs.k, std::fabs(alpha), abs_a.data(), lda,
                    abs_b.data(), ldb, std::fabs(beta), mag.data(), ldc, abs_ep);

  const double eps = std::ldexp(1.0, -23);
  size_t bad = 0, gap_bad = 0;
  double worst = 0.0;
  size_t worst_i = 0, worst_j = 0;
  for (size_t i = 0; i < cs.m; ++i) {
    for (size_t j = 0; j < ldc; ++j) {
      const size_t at = i * ldc + j;
      if (at >= c.size()) break;
      if (j >= cs.n) {
        if (std::memcmp(&c.data()[at], &c_old[at], sizeof(float)) != 0) ++gap_bad;
        continue;
      }
      const double tol = (static_cast<double>(cs.k) + 4.0) * eps * mag[at] + 1e-30;
      const double err = std::fabs(static_cast<double>(c.data()[at]) - ref[at]);
      const bool nan_expected = cs.nan_in_a && std::isnan(ref[at]);
      if (nan_expected ? !std::isnan(c.data()[at]) : !(err <= tol)) {
        ++bad;
        const double rel = std::isnan(err) ? INFINITY : err / tol;
        if (rel > worst || bad == 1) {
          worst = rel;
          worst_i = i;
          worst_j = j;
        }
      }
    }
  }
  std::string msg = describe(cs);
  if (bad) {
    char buf[200];
    std::snprintf(buf, sizeof(buf), " | %zu wrong, worst at (%zu,%zu): got %g want %g", bad, worst_i, worst_j,
                  c.data()[worst_i * ldc + worst_j], ref[worst_i * ldc + worst_j]);
    msg += buf;
  }
  if (gap_bad) msg += " | wrote into the gaps between C rows";
  check(bad == 0 && gap_bad == 0, msg);
  return std::vector<float>(c.data(), c.data() + c.size());
}

const size_t kDepths[] = {1, 2, 3, 7, 16, 17, 255, 288};
const bool kTrans[][2] = {{false, false}, {false, true}, {true, false}, {true, true}};

// A plain case of m x n x k with op(A), op(B) transposed as `trans` says; the rest at defaults.
Case shape_case(size_t m, size_t n, size_t k, const bool (&trans)[2]) {
  Case cs;
  cs.m = m;
  cs.n = n;
  cs.k = k;
  cs.trans_a = trans[0];
  cs.trans_b = trans[1];
  return cs;
}

// Rotates through scalings and epilogues so the sweeps cover every combination across cases.
void vary(Case& cs, size_t index) {
  static const float alphas[] = {1.0f, -0.75f, 2.0f};
  static const float betas[] = {0.0f, 1.0f, 0.0f, -0.5f, 0.0f};
  cs.alpha = alphas[index % 3];
  cs.beta = betas[index % 5];
  cs.bias_mode = static_cast<BiasMode>(index % 3);
  cs.relu = (index / 3) % 2 == 1;
  cs.clamp = (index / 7) % 2 == 1;
  cs.accumulate = index % 4 == 2;
  cs.pad_a = (index % 4 == 1) ? 3 : 0;
  cs.pad_b = (index % 4 == 2) ? 5 : 0;
  cs.pad_c = (index % 4 == 3) ? 7 : 0;
}

// m in 1..MR+1, n in 1..NR+1: every partial tile, each with two depths and all transposes.
void sweep_edges(uint64_t& seed) {
  // 12 rows: the tallest tile of any ISA (AVX-512's 12 x 32, two A panels); 64: wider than any tile.
  const size_t mr = 2 * kiln::kF32GemmMr, nr = 64 + 1;
  size_t index = 0;
  for (size_t m = 1; m <= mr + 1; ++m) {
    for (size_t n = 1; n <= nr; ++n) {
      for (int rep = 0; rep < 2; ++rep, ++index) {
        Case cs = shape_case(m, n, kDepths[(index * 3 + rep) % 8], kTrans[index % 4]);
        vary(cs, index / 4);
        run_case(cs, ++seed);
      }
    }
  }
}

// Prime and odd sizes up to ~300 with every depth and transpose pair.
void sweep_random(uint64_t& seed) {
  static const size_t sizes[] = {1, 2, 5, 6, 7, 11, 13, 17, 31, 37, 61, 67, 97, 101, 127, 131, 211, 293};
  Rng rng(seed);
  size_t index = 0;
  for (size_t kd : kDepths) {
    for (const auto& tr : kTrans) {
      for (int rep = 0; rep < 2; ++rep, ++index) {
        Case cs = shape_case(sizes[rng.below(sizeof(sizes) / sizeof(sizes[0]))], sizes[rng.below(sizeof(sizes) / sizeof(sizes[0]))], kd, tr);
        vary(cs, index);
        cs.threads = 1 + index % 2;
        run_case(cs, ++seed);
      }
    }
  }
  // Depths beyond one K block: later blocks accumulate into C, the epilogue runs once at the end.
  for (size_t kd : {385, 700, 1031}) {
    for (const auto& tr : kTrans) {
      Case cs = shape_case(13 + index % 40, 67 + index % 50, kd, tr);
      vary(cs, index++);
      cs.threads = 1 + index % 2;
      run_case(cs, ++seed);
    }
  }
}

// Products used by the MNIST networks: row-major B read in place (M < 32, K <= 32, or a B of at
// most 512 KiB under M < 128) and packed row by row into panels (the rest: {133, 512, 400},
// {300, 768, 7}, {400, 70, 700}), with a partial last panel where N is not a multiple of 16.
void sweep_model_shapes(uint64_t& seed) {
  const size_t shapes[][3] = {{32, 676, 9},    {64, 121, 288}, {64, 128, 1600}, {10, 64, 128},
                              {128, 10, 64},   {131, 256, 17}, {133, 512, 400}, {300, 768, 7},
                              // More rows than one A block (180 rows at kc = 350): three blocks, the last partial.
                              {400, 70, 700}};
  size_t index = 0;
  for (const auto& s : shapes) {
    for (const auto& tr : kTrans) {
      Case cs = shape_case(s[0], s[1], s[2], tr);
      vary(cs, index++);
      run_case(cs, ++seed);
    }
  }
}

// Packed operands, packed under one ISA and used under the active one.
void sweep_packed(uint64_t& seed) {
  // M = 1 with a packed B is the one-row (GEMV) path: several 128-column groups, K blocks, tails.
  static const size_t shapes[][3] = {{1, 1, 1}, {6, 16, 7}, {7, 17, 17}, {5, 65, 3}, {32, 676, 9},
                                     {64, 121, 288}, {13, 131, 400}, {101, 37, 255}, {7, 20, 0},
                                     {1, 128, 1600}, {1, 10, 128}, {1, 257, 401}, {1, 143, 5}, {400, 37, 700}};
  size_t index = 0;
  for (kiln::Isa pack_isa : kiln_test::isas_to_test()) {
    for (const auto& s : shapes) {
      for (Case::Variant variant : {Case::kPackedA, Case::kPackedB}) {
        Case cs = shape_case(s[0], s[1], s[2], kTrans[index % 4]);
        cs.variant = variant;
        cs.pack_isa = pack_isa;
        vary(cs, index);
        cs.alpha = 1.0f;  // packed products have no scaling
        cs.beta = 0.0f;
        cs.threads = 1 + index % 2;
        ++index;
        run_case(cs, ++seed);
      }
    }
  }
}

// Empty products: m or n == 0 touch nothing; k == 0 gives beta * C + epilogue.
void sweep_empty(uint64_t& seed) {
  size_t index = 0;
  for (const auto& dims : {std::vector<size_t>{0, 5, 3}, {5, 0, 3}, {7, 9, 0}, {1, 70, 0}}) {
    for (int rep = 0; rep < 5; ++rep, ++index) {
      Case cs;
      cs.m = dims[0];
      cs.n = dims[1];
      cs.k = dims[2];
      vary(cs, index);
      if (cs.m == 0 || cs.n == 0) {
        // Pointers to nothing must not be touched: pass a guarded 1-float buffer and check it.
        GuardedBuffer a(1), b(1), c(1);
        c.data()[0] = 42.0f;
        kiln::sgemm(false, false, cs.m, cs.n, cs.k, 1.0f, a.data(), 1, b.data(), 1, 0.0f, c.data(), 1);
        check(c.data()[0] == 42.0f, describe(cs) + " | wrote C of an empty product");
      } else {
        run_case(cs, ++seed);
      }
    }
  }
}

// A NaN in A reaches its row of C through every path (ReLU included) instead of vanishing.
void check_nan_propagation(uint64_t& seed) {
  static const size_t shapes[][3] = {{5, 70, 20}, {30, 70, 500}, {150, 256, 20}, {1, 150, 500}};
  size_t index = 0;
  for (const auto& s : shapes) {
    for (const auto& tr : kTrans) {
      for (Case::Variant variant : {Case::kPlain, Case::kPackedA, Case::kPackedB}) {
        Case cs = shape_case(s[0], s[1], s[2], tr);
        cs.variant = variant;
        cs.pack_isa = kiln::active_isa();
        cs.bias_mode = static_cast<BiasMode>(index % 3);
        cs.relu = true;
        cs.clamp = index % 2 == 1;
        cs.nan_in_a = true;
        ++index;
        run_case(cs, ++seed);
      }
    }
  }
}

// The same product on 1, 2 and 3 threads must give the same bits.
void check_determinism(uint64_t& seed) {
  // The last one splits both ways (row chunks x column chunks capped by the L2 budget).
  static const size_t shapes[][3] = {{150, 170, 300}, {24, 700, 400}, {301, 67, 500}, {97, 1031, 64}, {200, 700, 400}};
  size_t index = 0;
  for (const auto& s : shapes) {
    for (const auto& tr : kTrans) {
      Case cs = shape_case(s[0], s[1], s[2], tr);
      vary(cs, index++);
      ++seed;
      cs.threads = 1;
      const std::vector<float> one = run_case(cs, seed);
      for (size_t t : {2, 3}) {
        cs.threads = t;
        const std::vector<float> many = run_case(cs, seed);
        check(one.size() == many.size() && std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0,
              describe(cs) + " | differs from the single-thread result");
      }
    }
  }
}

// A packed-B product of one row (the GEMV path) gives the bits of that row in a larger product
// (the tiled path), on any number of threads: a Linear layer's output does not depend on the
// batch it runs in. The last two are over the size that splits one row over threads (by column
// group and K block: 1 group x 6 blocks, 3 groups x 2 blocks).
// Each vector filled with uniform values from `rng`, in order.
void fill_uniform(Rng& rng, std::initializer_list<std::vector<float>*> vectors) {
  for (std::vector<float>* v : vectors) {
    for (float& x : *v) x = rng.uniform();
  }
}

void check_single_row_matches_tiles() {
  for (const auto& s : {std::vector<size_t>{128, 1600}, {10, 128}, {257, 401}, {33, 7}, {128, 2304}, {300, 700}}) {
    const size_t n = s[0], k = s[1], m = 7;
    std::vector<float> a(m * k), b(k * n), bias(n), all(m * n), one(n, kNaN);
    Rng rng(n * 31 + k);
    fill_uniform(rng, {&a, &b, &bias});
    const kiln::PackedB pb(false, k, n, b.data(), n);
    GemmEpilogue ep;
    ep.bias = bias.data();
    ep.bias_mode = BiasMode::kPerColumn;
    ep.relu = true;
    // Clamped on some shapes: the row kernels clamp after the fact, the tiles inside.
    ep.clamp = n % 2 == 1;
    ep.clamp_lo = -0.5f;
    ep.clamp_hi = 1.5f;
    kiln::sgemm_packed_b(m, false, a.data(), k, pb, all.data(), n, ep, 1);
    for (size_t threads : {1, 2, 3}) {
      std::fill(one.begin(), one.end(), kNaN);
      kiln::sgemm_packed_b(1, false, a.data() + 3 * k, k, pb, one.data(), n, ep, threads);
      check(std::memcmp(one.data(), all.data() + 3 * n, n * sizeof(float)) == 0,
            std::string("isa=") + kiln::isa_name(kiln::active_isa()) + " n=" + std::to_string(n) + " k=" +
                std::to_string(k) + " threads=" + std::to_string(threads) +
                " | one-row product differs from its row in a 7-row product");
    }
  }
}

// sgemm_packed_b_columns over parts of the columns, each part's C filled with NaN first: the
// parts together are the whole product bit for bit, and no part writes outside its columns.
// Shapes: pixel rows of late convolution layers (49, 196 rows), op(A) transposed as there, K past
// one block, N off the tile width; cuts at whole tiles and at single 16-column panels.
void check_packed_b_columns() {
  const kiln::F32GemmKernels& kern = kiln::dispatch().f32_gemm;
  for (const auto& s : {std::vector<size_t>{49, 512, 800}, {196, 1024, 256}, {13, 70, 37}, {25, 160, 1}, {7, 0, 5}}) {
    const size_t m = s[0], n = s[1], k = s[2], ldc = n + 3;
    std::vector<float> a(k * m), b(k * n), bias(n), whole(m * ldc, kNaN), parts(m * ldc, kNaN);
    Rng rng(m * 131 + n * 7 + k);
    fill_uniform(rng, {&a, &b, &bias});
    const kiln::PackedB pb(false, k, n, b.data(), n);
    GemmEpilogue ep;
    ep.bias = bias.data();
    ep.bias_mode = BiasMode::kPerColumn;
    ep.relu = n % 2 == 0;
    kiln::sgemm_packed_b(m, true, a.data(), m, pb, whole.data(), ldc, ep, 1);
    for (size_t step : {kern.nr, size_t{kiln::kF32GemmPanelN}}) {
      std::fill(parts.begin(), parts.end(), kNaN);
      for (size_t n0 = 0; n0 < n; n0 += step) {
        kiln::sgemm_packed_b_columns(kern, m, true, a.data(), m, pb, n0, n0 + step, parts.data(), ldc, ep);
        bool outside_untouched = true;
        for (size_t i = 0; i < m; ++i) {
          for (size_t j = n0 + step; j < ldc; ++j) outside_untouched &= std::isnan(parts[i * ldc + j]);
        }
        check(outside_untouched, std::string("isa=") + kiln::isa_name(kiln::active_isa()) + " m=" + std::to_string(m) +
                                     " n0=" + std::to_string(n0) + " | a column part wrote past its columns");
      }
      check(std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)) == 0,
            std::string("isa=") + kiln::isa_name(kiln::active_isa()) + " m=" + std::to_string(m) + " n=" +
                std::to_string(n) + " k=" + std::to_string(k) + " step=" + std::to_string(step) +
                " | column parts differ from the whole product");
    }
  }
}

// A convolution's B (its column matrix or input planes) is read in place up to 256 rows and packed
// from 257: the same products in the same order, so the same bits as the unknown case (packed from
// 32 rows), on 1 and 2 threads. The in-place tiles fetch
// their next tile's rows ahead (past the last one too, which must stay harmless).
void check_b_hints() {
  const kiln::F32GemmKernels& kern = kiln::dispatch().f32_gemm;
  for (const auto& s : {std::vector<size_t>{40, 300, 200}, {100, 70, 500}, {127, 33, 33}, {64, 3136, 64}, {13, 300, 70}, {24, 784, 144}, {200, 97, 150}, {257, 45, 40}}) {
    const size_t m = s[0], n = s[1], k = s[2], ldb = n + 5;
    std::vector<float> a(m * k), b(k * ldb), bias(m), unknown(m * n, kNaN), hinted(m * n, kNaN);
    Rng rng(m * 17 + n + k);
    fill_uniform(rng, {&a, &b, &bias});
    const kiln::PackedA pa(false, m, k, a.data(), k);
    GemmEpilogue ep;
    ep.bias = bias.data();
    ep.bias_mode = BiasMode::kPerRow;
    ep.relu = true;
    for (size_t threads : {1, 2}) {
      kiln::sgemm_packed_a(kern, pa, n, false, b.data(), ldb, unknown.data(), n, ep, threads);
      kiln::sgemm_packed_a(kern, pa, n, false, b.data(), ldb, hinted.data(), n, ep, threads, kiln::BHint::kConvolution);
      check(std::memcmp(unknown.data(), hinted.data(), hinted.size() * sizeof(float)) == 0,
            std::string("isa=") + kiln::isa_name(kiln::active_isa()) + " m=" + std::to_string(m) + " n=" +
                std::to_string(n) + " threads=" + std::to_string(threads) + " | B read in place and B packed differ");
    }
  }
}

// The epilogue's post hook sees every element of C exactly once, after bias, ReLU and clamp: a
// hook that squares and counts gives the plain product squared, and as many calls' elements as C
// has, on every entry point (rows and columns split over threads, the one-row path, K == 0).
void check_post_hook() {
  struct Count {
    std::atomic<size_t> elements{0};
  };
  auto square = [](const void* ctx, float* v, size_t n) {
    for (size_t i = 0; i < n; ++i) v[i] *= v[i];
    static_cast<Count*>(const_cast<void*>(ctx))->elements += n;
  };
  for (const auto& s : {std::vector<size_t>{37, 300, 200}, {1, 500, 70}, {130, 45, 33}, {5, 7, 0}}) {
    const size_t m = s[0], n = s[1], k = s[2];
    std::vector<float> a(m * k), b(k * n), bias(n);
    Rng rng(m + 7 * n + k);
    fill_uniform(rng, {&a, &b, &bias});
    const kiln::PackedB pb(false, k, n, b.data(), n);
    GemmEpilogue ep;
    ep.bias = bias.data();
    ep.bias_mode = BiasMode::kPerColumn;
    ep.clamp = true;
    ep.clamp_lo = -0.5f;
    ep.clamp_hi = 2.0f;
    for (size_t threads : {1, 2}) {
      std::vector<float> plain(m * n, kNaN), hooked(m * n, kNaN), packed(m * n, kNaN);
      kiln::sgemm(false, false, m, n, k, 1.0f, a.data(), std::max<size_t>(k, 1), b.data(), n, 0.0f, plain.data(), n, ep, threads);
      for (float& v : plain) v *= v;
      Count count;
      GemmEpilogue with = ep;
      with.post = square;
      with.post_ctx = &count;
      kiln::sgemm(false, false, m, n, k, 1.0f, a.data(), std::max<size_t>(k, 1), b.data(), n, 0.0f, hooked.data(), n, with, threads);
      kiln::sgemm_packed_b(m, false, a.data(), std::max<size_t>(k, 1), pb, packed.data(), n, with, threads);
      const std::string where = std::string("isa=") + kiln::isa_name(kiln::active_isa()) + " m=" + std::to_string(m) +
                                " n=" + std::to_string(n) + " k=" + std::to_string(k) + " threads=" + std::to_string(threads);
      check(std::memcmp(plain.data(), hooked.data(), plain.size() * sizeof(float)) == 0 &&
                std::memcmp(plain.data(), packed.data(), plain.size() * sizeof(float)) == 0,
            where + " | the post hook's result differs from a pass after the product");
      check(count.elements == 2 * m * n, where + " | the post hook saw " + std::to_string(count.elements.load()) +
                                             " elements, not each of C's once per call");
    }
  }
}

// sgemm called from inside parallel_for tasks (as conv does per image): the inner call finds the
// pool busy and runs on its own thread; results must match a plain call bit for bit.
void check_nested_calls() {
  const size_t m = 67, n = 300, k = 200, calls = 4;
  std::vector<float> a(m * k), b(k * n), want(calls * m * n), got(calls * m * n, kNaN);
  Rng rng(77);
  for (float& v : a) v = rng.uniform();
  for (float& v : b) v = rng.uniform();
  for (size_t t = 0; t < calls; ++t) {
    kiln::sgemm(false, t % 2 == 1, m, n, k, 1.0f + t, a.data(), k, b.data(), t % 2 == 1 ? k : n, 0.0f,
                want.data() + t * m * n, n, GemmEpilogue(), 1);
  }
  kiln::parallel_for(calls, [&](size_t t) {
    kiln::sgemm(false, t % 2 == 1, m, n, k, 1.0f + t, a.data(), k, b.data(), t % 2 == 1 ? k : n, 0.0f,
                got.data() + t * m * n, n, GemmEpilogue(), 0);
  });
  check(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0,
        std::string("isa=") + kiln::isa_name(kiln::active_isa()) + " | sgemm inside parallel_for differs");
}

}  // namespace

int main() {
  kiln::set_num_threads(4);  // more workers than cores: the split is exercised even on 2 cores
  const kiln::Isa initial = kiln::active_isa();
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    if (!kiln::set_active_isa(isa)) {
      std::printf("FAIL could not select %s\n", kiln::isa_name(isa));
      ++g_failed;
      continue;
    }
    const int failed_before = g_failed, passed_before = g_passed;
    uint64_t seed = 1000 * (static_cast<uint64_t>(isa) + 1);
    sweep_edges(seed);
    sweep_random(seed);
    sweep_model_shapes(seed);
    sweep_packed(seed);
    check_single_row_matches_tiles();
    check_packed_b_columns();
    check_b_hints();
    check_post_hook();
    sweep_empty(seed);
    check_nan_propagation(seed);
    check_determinism(seed);
    check_nested_calls();
    std::printf("%-11s %d passed, %d failed\n", kiln::isa_name(isa), g_passed - passed_before,
                g_failed - failed_before);
  }
  kiln::set_active_isa(initial);
  return kiln_test::finish();
}
