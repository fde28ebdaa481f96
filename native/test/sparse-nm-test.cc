// N:M packed fp32 weights (kiln/sparse-nm.h): the packer's layout (hand-checked metadata bytes,
// round trips, groups with fewer than N non-zeros), the detector, the refusals, and every ISA
// table's N:M SpMM kernels against a float64 dense product of the same masked weights: 2:4, 1:4,
// 4:8 (and the other N of each M, so every kernel instantiation runs), odd shapes, spatial 1 and
// 9 (conv weights, groups over input channels at one kernel position), bias and ReLU, threads 1
// and 2, on page-guarded buffers whose unwritten parts must keep their sentinel; and one-step
// Conv / Gemm plans with sparse 'always' (must pack N:M, detail "sparse 2:4 50%") against 'never'.
#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.h"
#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "kiln/plan.h"
#include "kiln/sparse-nm.h"
#include "sparse/sparse-nm-ukernel.h"
#include "test-util.h"

namespace {

using kiln::NmPattern;
using kiln::PackedNmF32;
using kiln_test::check;
using kiln_test::Guarded;
using kiln_test::Rng;

const float kSentinel = -12345.0f;

// rows x (channels * spatial) OIHW weights, N:M over input channels at each kernel position: each
// group keeps n random channels (non-zero), except that with probability `fewer` a group keeps
// a random count below n (possibly 0).
std::vector<float> nm_weights(size_t rows, size_t channels, size_t spatial, size_t n, size_t m, float fewer, Rng& rng) {
  const size_t k = channels * spatial;
  std::vector<float> w(rows * k, 0.0f);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t p = 0; p < spatial; ++p) {
      for (size_t cg = 0; cg < channels / m; ++cg) {
        size_t keep = n;
        if (static_cast<float>(rng.next() >> 40) / 16777216.0f < fewer) keep = rng.below(n);
        bool kept[8] = {};
        for (size_t done = 0; done < keep;) {
          const size_t i = rng.below(m);
          if (kept[i]) continue;
          kept[i] = true;
          ++done;
          float v = rng.uniform();
          if (v == 0.0f) v = 0.5f;
          w[r * k + (cg * m + i) * spatial + p] = v;
        }
      }
    }
  }
  return w;
}

bool refused(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

void test_layout() {
  // One row, 4 channels, 2 kernel positions: OIHW index c * 2 + p. Position 0 keeps channels 1
  // and 3, position 1 keeps channel 2 only (a group with fewer than N = 2: its spare slot takes
  // the first channel not kept, 0, with value 0).
  const float w[] = {0, 0, 5, 0, 0, 7, 6, 0};  // (c0p0, c0p1, c1p0, c1p1, c2p0, c2p1, c3p0, c3p1)
  const PackedNmF32 p(1, 8, 2, w, 8, 2, 4);
  check(p.groups_per_row() == 2 && p.channel_groups() == 1 && p.meta_bytes() == 1 && p.stored_values() == 4,
        "2:4 layout sizes");
  check(p.values()[0] == 5 && p.values()[1] == 6 && p.values()[2] == 7 && p.values()[3] == 0, "2:4 values in (p, c) order");
  check(p.meta()[0] == (1u | 3u << 2) && p.meta()[1] == (2u | 0u << 2), "2:4 metadata: 2 bits per index");
  check(p.nonzeros() == 3 && p.to_dense() == std::vector<float>(w, w + 8), "2:4 round trip");
  // 3:8 on a Linear row of 8: indices 3 bits each, 9 bits -> 2 bytes.
  const float l[] = {0, 1, 0, 0, 2, 0, 0, 3};
  const PackedNmF32 q(1, 8, 1, l, 8, 3, 8);
  check(q.meta_bytes() == 2 && q.meta()[0] == static_cast<uint8_t>(1u | 4u << 3 | 7u << 6) && q.meta()[1] == (7u >> 2),
        "3:8 metadata: 3 bits per index across bytes");
  check(q.to_dense() == std::vector<float>(l, l + 8), "3:8 round trip");
  const float nan = std::nanf("");
  const float wn[] = {nan, 0, 0, 0};
  const PackedNmF32 pn(1, 4, 1, wn, 4, 1, 4);
  check(pn.nonzeros() == 1 && std::isnan(pn.values()[0]), "NaN is kept as a non-zero");
}

void test_refusals() {
  const float w[] = {1, 1, 1, 0, 0, 0, 0, 0};
  check(refused([&] { PackedNmF32(1, 8, 1, w, 8, 2, 4); }), "a group with 3 non-zeros refused for 2:4");
  check(!refused([&] { PackedNmF32(1, 8, 1, w, 8, 3, 4); }), "the same group packs as 3:4");
  // Along the OIHW row the first 4 weights are non-zero, but with spatial 2 each group (channels
  // 0..3 at one position) holds 2: the groups follow the reduction order, not the row.
  check(!refused([&] { PackedNmF32(1, 8, 2, w, 8, 2, 4); }), "spatial 2: groups are channels at one position");
  check(refused([&] { PackedNmF32(1, 6, 1, w, 6, 2, 4); }), "M not dividing the channels refused");
  check(refused([&] { PackedNmF32(1, 8, 2, w, 8, 2, 8); }), "M = 8 with 4 channels refused");
  check(refused([&] { PackedNmF32(1, 8, 3, w, 8, 2, 4); }), "spatial not dividing k refused");
  check(refused([&] { PackedNmF32(1, 8, 0, w, 8, 2, 4); }), "spatial 0 refused");
  check(refused([&] { PackedNmF32(1, 8, 1, w, 8, 4, 4); }), "N = M refused");
  check(refused([&] { PackedNmF32(1, 8, 1, w, 8, 0, 4); }), "N = 0 refused");
  check(refused([&] { PackedNmF32(1, 8, 1, w, 8, 2, 6); }), "M = 6 refused");
  check(refused([&] { PackedNmF32(1, 8, 1, w, 7, 3, 4); }), "ldw < k refused");
  check(refused([&] { PackedNmF32(1, 8, 1, nullptr, 8, 3, 4); }), "null weights refused");
  check(refused([&] { PackedNmF32(kiln::kSparseMaxDim + 1, 4, 1, w, 4, 3, 4); }), "huge rows refused");
  const PackedNmF32 empty(0, 8, 1, nullptr, 0, 2, 4);
  check(empty.stored_values() == 0, "empty matrix");
}

void test_detector(Rng& rng) {
  auto is = [](NmPattern p, size_t n, size_t m) { return p.n == n && p.m == m; };
  for (size_t spatial : {size_t{1}, size_t{9}}) {
    const std::string sp = " spatial " + std::to_string(spatial);
    auto w24 = nm_weights(12, 16, spatial, 2, 4, 0.0f, rng);
    check(is(kiln::nm_pattern_of(w24.data(), 12, 16 * spatial, spatial), 2, 4), "2:4 detected" + sp);
    // One of the 48 groups (2%) emptied: still 1:4.
    auto w14 = nm_weights(12, 16, spatial, 1, 4, 0.0f, rng);
    for (size_t c = 0; c < 4; ++c) w14[c * spatial] = 0.0f;
    check(is(kiln::nm_pattern_of(w14.data(), 12, 16 * spatial, spatial), 1, 4), "1:4 with an empty group detected" + sp);
    auto w48 = nm_weights(12, 16, spatial, 4, 8, 0.0f, rng);
    check(is(kiln::nm_pattern_of(w48.data(), 12, 16 * spatial, spatial), 4, 8), "4:8 detected as 4:8" + sp);
    // 30% of the groups with fewer than 2 (on average; far from the 10% limit at 48 groups).
    auto loose = nm_weights(12, 16, spatial, 2, 4, 0.3f, rng);
    check(is(kiln::nm_pattern_of(loose.data(), 12, 16 * spatial, spatial), 0, 0), "30% short groups: not N:M" + sp);
    // Unstructured 50% zeros: some group holds 3 or 4 non-zeros.
    std::vector<float> u(12 * 16 * spatial);
    for (float& v : u) v = (rng.next() & 1) ? rng.uniform() + 2.0f : 0.0f;
    check(is(kiln::nm_pattern_of(u.data(), 12, 16 * spatial, spatial), 0, 0), "unstructured 50% not N:M" + sp);
  }
  // 2:4 over the reduction order (kh, kw, c) is not 2:4 along the OIHW row, and the reverse.
  auto conv = nm_weights(8, 16, 9, 2, 4, 0.0f, rng);
  check(kiln::nm_pattern_of(conv.data(), 8, 144, 1).n == 0, "conv 2:4 read as spatial 1 is not 2:4");
  auto row = nm_weights(8, 144, 1, 2, 4, 0.0f, rng);
  check(kiln::nm_pattern_of(row.data(), 8, 144, 9).n == 0, "row 2:4 read as spatial 9 is not 2:4");
  std::vector<float> dense(8 * 16, 1.0f);
  check(kiln::nm_pattern_of(dense.data(), 8, 16, 1).n == 0, "dense is not N:M");
  std::vector<float> zeros(8 * 16, 0.0f);
  check(kiln::nm_pattern_of(zeros.data(), 8, 16, 1).n == 0, "all zero is not N:M");
  check(kiln::nm_pattern_of(nullptr, 8, 16, 1).n == 0, "null weights: none");
  check(kiln::nm_pattern_of(dense.data(), 8, 12, 1).n == 0 && kiln::nm_pattern_of(dense.data(), 8, 16, 3).n == 0,
        "shapes without whole groups: none");
}

void test_case(const kiln::DispatchTable& t, size_t n_keep, size_t m, size_t rows, size_t channels, size_t spatial,
               size_t n, bool bias_on, bool relu, size_t threads, size_t pad, Rng& rng) {
  const std::string what = std::string(kiln::isa_name(t.isa)) + " " + std::to_string(n_keep) + ":" + std::to_string(m) +
                           " rows=" + std::to_string(rows) + " c=" + std::to_string(channels) + " spatial=" +
                           std::to_string(spatial) + " n=" + std::to_string(n) + " threads=" + std::to_string(threads);
  const size_t k = channels * spatial;
  const std::vector<float> w = nm_weights(rows, channels, spatial, n_keep, m, 0.1f, rng);
  const PackedNmF32 packed(rows, k, spatial, w.data(), k, n_keep, m);
  check(packed.to_dense() == w, what + " round trip");
  const size_t ldx = n + pad, ldy = n + pad;
  Guarded<float> x(k * ldx), y(rows * ldy), bias(rows);
  x.randomize(rng);
  bias.randomize(rng);
  y.fill(kSentinel);
  const float* b = bias_on ? bias.data() : nullptr;
  kiln::spmm_nm_f32(t.f32_nm_spmm, packed, n, x.data(), ldx, y.data(), ldy, b, relu, threads);
  const auto [ok, sentinel] = kiln_test::check_dense_product(w.data(), rows, k, x.data(), ldx, y.data(), ldy, n, b, relu, kSentinel);
  check(ok, what + " equals the dense product");
  check(sentinel, what + " leaves the row gaps alone");
}

// One-step plans, sparse 'always' against 'never' on the same weights: on the im2col + SpMM path
// (strided, pointwise) the plan packs N:M when the zeros are exactly N:M (detail "sparse 2:4
// 50%"); stride-1 convolutions keep the direct CSR kernel ("sparse unstructured"; conv.cc says
// why). Both must give the dense result.
void test_plan(Rng& rng) {
  struct ConvCase {
    size_t out, in, kh, kw, stride, n, m, h, w;
    bool nm;  // packed N:M (else the direct CSR kernel)
  };
  const ConvCase convs[] = {{6, 8, 3, 3, 1, 2, 4, 7, 5, false},    {5, 16, 3, 3, 2, 4, 8, 9, 8, true},
                            {7, 12, 1, 1, 1, 1, 4, 6, 6, true},     {9, 8, 5, 5, 2, 1, 4, 12, 12, true},
                            {6, 16, 3, 3, 2, 2, 4, 11, 10, true},   {9, 8, 5, 5, 1, 1, 4, 12, 12, false}};
  for (const ConvCase& c : convs) {
    const size_t spatial = c.kh * c.kw, pad = c.kh / 2;
    std::vector<float> w = nm_weights(c.out, c.in, spatial, c.n, c.m, 0.0f, rng);
    std::vector<float> bias(c.out);
    for (float& v : bias) v = rng.uniform();
    const size_t oh = (c.h + 2 * pad - c.kh) / c.stride + 1, ow = (c.w + 2 * pad - c.kw) / c.stride + 1;
    auto build = [&](const char* mode) {
      kiln::PlanSpec spec;
      spec.values = {{c.in, c.h, c.w}, {c.out, oh, ow}};
      spec.inputs = {0};
      spec.outputs = {1};
      kiln::PlanStepSpec st;
      st.op = "Conv";
      st.name = "conv";
      st.inputs = {0};
      st.outputs = {1};
      kiln::PlanAttr a;
      a.kind = kiln::PlanAttr::kList;
      a.list = {static_cast<double>(c.kh), static_cast<double>(c.kw)};
      st.attrs["kernel"] = a;
      a.list = {static_cast<double>(c.stride), static_cast<double>(c.stride)};
      st.attrs["strides"] = a;
      a.list = {static_cast<double>(pad), static_cast<double>(pad), static_cast<double>(pad), static_cast<double>(pad)};
      st.attrs["pads"] = a;
      kiln::PlanAttr t;
      t.kind = kiln::PlanAttr::kString;
      t.text = mode;
      st.attrs["sparse"] = t;
      st.attrs["activation"] = [] {
        kiln::PlanAttr r;
        r.kind = kiln::PlanAttr::kString;
        r.text = "Relu";
        return r;
      }();
      kiln::PlanTensor wt;
      wt.data = w.data();
      wt.raw = wt.data;
      wt.length = w.size();
      wt.shape = {c.out, c.in, c.kh, c.kw};
      st.weights["W"] = wt;
      kiln::PlanTensor bt;
      bt.data = bias.data();
      bt.raw = bt.data;
      bt.length = bias.size();
      bt.shape = {c.out};
      st.weights["B"] = bt;
      spec.steps = {st};
      return std::make_unique<kiln::Plan>(spec);
    };
    const std::string what = "plan conv " + std::to_string(c.kh) + "x" + std::to_string(c.kw) + " s" +
                             std::to_string(c.stride) + " " + std::to_string(c.n) + ":" + std::to_string(c.m);
    auto sparse = build("always"), dense = build("never");
    const std::string detail = sparse->info().steps.at(0);
    const std::string want = " sparse " + (c.nm ? std::to_string(c.n) + ":" + std::to_string(c.m) : "unstructured") +
                             " " + std::to_string(static_cast<int>(std::lround(100.0 * (c.m - c.n) / c.m))) + "%";
    check(detail.size() >= want.size() && detail.compare(detail.size() - want.size(), want.size(), want) == 0,
          what + " detail '" + detail + "' ends with '" + want + "'");
    for (size_t batch : {1, 3}) {
      std::vector<float> x(batch * c.in * c.h * c.w);
      for (float& v : x) v = rng.uniform();
      std::vector<float> ys(batch * c.out * oh * ow, NAN), yd(ys.size(), NAN);
      const float* in[] = {x.data()};
      float* out_s[] = {ys.data()};
      float* out_d[] = {yd.data()};
      sparse->run(in, out_s, batch);
      dense->run(in, out_d, batch);
      bool ok = true;
      for (size_t i = 0; i < ys.size(); ++i) ok &= std::fabs(ys[i] - yd[i]) <= 1e-4f * (1 + std::fabs(yd[i]));
      check(ok, what + " equals the dense plan, batch " + std::to_string(batch));
    }
  }
}

// Gemm (transB: B is out x in, groups of M consecutive inputs), 2:4, 1:4 and 4:8, batch 1 and 5.
void test_plan_gemm(Rng& rng) {
  const size_t cases[][4] = {{10, 24, 2, 4}, {7, 40, 1, 4}, {12, 32, 4, 8}};
  for (const auto& c : cases) {
    const size_t out = c[0], in = c[1], nk = c[2], m = c[3];
    std::vector<float> w = nm_weights(out, in, 1, nk, m, 0.0f, rng);
    std::vector<float> bias(out);
    for (float& v : bias) v = rng.uniform();
    auto build = [&](const char* mode) {
      kiln::PlanSpec spec;
      spec.values = {{in}, {out}};
      spec.inputs = {0};
      spec.outputs = {1};
      kiln::PlanStepSpec st;
      st.op = "Gemm";
      st.name = "gemm";
      st.inputs = {0};
      st.outputs = {1};
      kiln::PlanAttr a;
      a.kind = kiln::PlanAttr::kNumber;
      a.number = 1;
      st.attrs["transB"] = a;
      kiln::PlanAttr t;
      t.kind = kiln::PlanAttr::kString;
      t.text = mode;
      st.attrs["sparse"] = t;
      kiln::PlanTensor wt;
      wt.data = w.data();
      wt.raw = wt.data;
      wt.length = w.size();
      wt.shape = {out, in};
      st.weights["B"] = wt;
      kiln::PlanTensor bt;
      bt.data = bias.data();
      bt.raw = bt.data;
      bt.length = bias.size();
      bt.shape = {out};
      st.weights["C"] = bt;
      spec.steps = {st};
      return std::make_unique<kiln::Plan>(spec);
    };
    const std::string what = "plan gemm " + std::to_string(in) + "->" + std::to_string(out) + " " +
                             std::to_string(nk) + ":" + std::to_string(m);
    auto sparse = build("always"), dense = build("never");
    const std::string detail = sparse->info().steps.at(0);
    const std::string want = " sparse " + std::to_string(nk) + ":" + std::to_string(m) + " " +
                             std::to_string(static_cast<int>(std::lround(100.0 * (m - nk) / m))) + "%";
    check(detail.size() >= want.size() && detail.compare(detail.size() - want.size(), want.size(), want) == 0,
          what + " detail '" + detail + "' ends with '" + want + "'");
    for (size_t batch : {1, 5}) {
      std::vector<float> x(batch * in);
      for (float& v : x) v = rng.uniform();
      std::vector<float> ys(batch * out, NAN), yd(ys.size(), NAN);
      const float* inp[] = {x.data()};
      float* out_s[] = {ys.data()};
      float* out_d[] = {yd.data()};
      sparse->run(inp, out_s, batch);
      dense->run(inp, out_d, batch);
      bool ok = true;
      for (size_t i = 0; i < ys.size(); ++i) ok &= std::fabs(ys[i] - yd[i]) <= 1e-4f * (1 + std::fabs(yd[i]));
      check(ok, what + " equals the dense plan, batch " + std::to_string(batch));
    }
  }
}

}  // namespace

int main() {
  test_layout();
  test_refusals();
  Rng rng(24);
  test_detector(rng);
  test_plan(rng);
  test_plan_gemm(rng);
  const size_t patterns[][2] = {{2, 4}, {1, 4}, {4, 8}, {3, 4}, {1, 8}, {2, 8}, {3, 8}, {5, 8}, {6, 8}, {7, 8}};
  // rows, channel groups, columns: odd columns straddle every tile edge (8 / 16 lanes, 32 / 64
  // pixel tiles, the contiguous copy from 2 tiles up).
  const size_t shapes[][3] = {{1, 1, 1}, {3, 1, 7}, {5, 3, 17}, {7, 2, 33}, {9, 5, 65}, {13, 4, 129}, {16, 8, 200}, {17, 3, 300}};
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    const kiln::DispatchTable* t = kiln::dispatch_for(isa);
    for (const auto& pat : patterns) {
      const size_t nk = pat[0], m = pat[1];
      check((m == 4 ? t->f32_nm_spmm.m4[nk] : t->f32_nm_spmm.m8[nk]) != nullptr,
            std::string(kiln::isa_name(isa)) + " N:M kernel set");
      const bool main_pattern = (nk == 2 && m == 4) || (nk == 1 && m == 4) || (nk == 4 && m == 8);
      for (size_t spatial : {size_t{1}, size_t{9}}) {
        for (const auto& sh : shapes) {
          if (!main_pattern && sh[2] > 100) continue;  // the other N: the small shapes only
          const size_t i = rng.below(4);
          test_case(*t, nk, m, sh[0], sh[1] * m, spatial, sh[2], i & 1, i & 2, 1 + rng.below(2), rng.below(3) * 5, rng);
        }
      }
      if (main_pattern) {
        // Large enough to run on 2 threads (the driver's floor), both with bias and ReLU.
        test_case(*t, nk, m, 64, 4 * m, 9, 196, true, true, 2, 0, rng);
        // Few columns: the driver splits rows too (over its 2^17 multiply-add floor for every N).
        test_case(*t, nk, m, 256, 200 * m, 1, 5, true, false, 2, 3, rng);
        // No reduction at all (k = 0): bias, then ReLU.
        test_case(*t, nk, m, 5, 0, 9, 70, true, true, 1, 0, rng);
        test_case(*t, nk, m, 33, 8 * m, 9, 145, false, true, 1, 1, rng);
      }
    }
  }
  return kiln_test::finish("sparse-nm-test: ");
}
