// kiln::Plan without Node: storage planning checked against step-by-step execution, concurrent
// runs from several threads, and a seeded fuzz of malformed specs (each must either be refused
// with PlanError or run without touching memory outside its buffers: build with
// -fsanitize=address to check the second half). Prints "N passed, N failed"; exit code 1 on failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/plan.h"
#include "kiln/thread-pool.h"

#include "check.h"
#include "test-util.h"

namespace {

using kiln_test::check;

size_t numel(const kiln::PlanShape& s) {
  size_t n = 1;
  for (size_t d : s) n *= d;
  return n;
}

kiln::PlanAttr num(double v) {
  kiln::PlanAttr a;
  a.kind = kiln::PlanAttr::kNumber;
  a.number = v;
  return a;
}
kiln::PlanAttr list(std::vector<double> v) {
  kiln::PlanAttr a;
  a.kind = kiln::PlanAttr::kList;
  a.list = std::move(v);
  return a;
}
kiln::PlanAttr text(const std::string& v) {
  kiln::PlanAttr a;
  a.kind = kiln::PlanAttr::kString;
  a.text = v;
  return a;
}

struct Weights {
  std::vector<std::vector<float>> store;
  kiln::PlanTensor make(std::vector<size_t> shape, std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-1, 1);
    store.emplace_back(numel(shape));
    for (float& v : store.back()) v = u(rng);
    kiln::PlanTensor t;
    t.data = store.back().data();
    t.raw = t.data;
    t.length = store.back().size();
    t.shape = std::move(shape);
    return t;
  }
};

kiln::PlanStepSpec step(const std::string& op, std::vector<int64_t> in, std::vector<int64_t> out) {
  kiln::PlanStepSpec s;
  s.op = op;
  s.name = op;
  s.inputs = std::move(in);
  s.outputs = std::move(out);
  return s;
}

// x[2,6,6] -> Conv(4, pad 1) -> Relu -> Conv 1x1 -> Add(relu, conv2) -> MaxPool 2 -> Flatten
// -> Gemm 36->5 -> Softmax; outputs: softmax and relu.
kiln::PlanSpec network(Weights& w, std::mt19937& rng) {
  kiln::PlanSpec spec;
  spec.values = {{2, 6, 6}, {4, 6, 6}, {4, 6, 6}, {4, 6, 6}, {4, 6, 6}, {4, 3, 3}, {36}, {5}, {5}};
  spec.inputs = {0};
  spec.outputs = {8, 2};
  auto conv1 = step("Conv", {0}, {1});
  conv1.attrs["kernel"] = list({3, 3});
  conv1.attrs["pads"] = list({1, 1, 1, 1});
  conv1.weights["W"] = w.make({4, 2, 3, 3}, rng);
  conv1.weights["B"] = w.make({4}, rng);
  auto conv2 = step("Conv", {2}, {3});
  conv2.weights["W"] = w.make({4, 4, 1, 1}, rng);
  auto pool = step("MaxPool", {4}, {5});
  pool.attrs["kernel"] = list({2, 2});
  pool.attrs["strides"] = list({2, 2});
  auto gemm = step("Gemm", {6}, {7});
  gemm.weights["B"] = w.make({36, 5}, rng);
  auto softmax = step("Softmax", {7}, {8});
  softmax.attrs["axis"] = num(1);
  spec.steps = {conv1, step("Relu", {1}, {2}), conv2, step("Add", {2, 3}, {4}), pool, step("Flatten", {5}, {6}), gemm, softmax};
  return spec;
}

// Runs every step of `spec` as its own one-step plan with separate buffers (no sharing at all).
std::vector<std::vector<float>> step_by_step(const kiln::PlanSpec& spec, const std::vector<float>& x, size_t batch) {
  std::vector<std::vector<float>> values(spec.values.size());
  values[spec.inputs[0]] = x;
  for (const auto& s : spec.steps) {
    kiln::PlanSpec one;
    std::vector<const float*> in;
    for (size_t i = 0; i < s.inputs.size(); ++i) {
      one.values.push_back(spec.values[s.inputs[i]]);
      one.inputs.push_back(static_cast<int64_t>(i));
      in.push_back(values[s.inputs[i]].data());
    }
    one.values.push_back(spec.values[s.outputs[0]]);
    one.outputs = {static_cast<int64_t>(s.inputs.size())};
    auto copy = s;
    copy.inputs = one.inputs;
    copy.outputs = one.outputs;
    one.steps = {copy};
    std::vector<float>& y = values[s.outputs[0]];
    y.assign(batch * numel(spec.values[s.outputs[0]]), NAN);
    float* out = y.data();
    kiln::Plan(one).run(in.data(), &out, batch);
  }
  return values;
}

bool same(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(std::fabs(a[i] - b[i]) <= 1e-6f * (1 + std::fabs(b[i])))) return false;
  }
  return true;
}

void test_storage_planning() {
  std::mt19937 rng(1);
  Weights w;
  const kiln::PlanSpec spec = network(w, rng);
  kiln::Plan plan(spec);
  for (size_t batch : {1, 2, 5}) {
    std::vector<float> x(batch * 72);
    std::uniform_real_distribution<float> u(-1, 1);
    for (float& v : x) v = u(rng);
    std::vector<float> probs(batch * 5, NAN), relu(batch * 144, NAN);
    const float* in[] = {x.data()};
    float* out[] = {probs.data(), relu.data()};
    plan.run(in, out, batch);
    auto want = step_by_step(spec, x, batch);
    check(same(probs, want[8]), "network softmax output, batch " + std::to_string(batch));
    check(same(relu, want[2]), "network relu output, batch " + std::to_string(batch));
  }
}

void test_concurrent_runs() {
  std::mt19937 rng(2);
  Weights w;
  const kiln::PlanSpec spec = network(w, rng);
  const kiln::Plan plan(spec);
  const size_t runs = 6;
  std::vector<std::vector<float>> xs(runs), probs(runs), relus(runs);
  std::uniform_real_distribution<float> u(-1, 1);
  for (size_t r = 0; r < runs; ++r) {
    xs[r].resize((r + 1) * 72);
    for (float& v : xs[r]) v = u(rng);
    probs[r].assign((r + 1) * 5, NAN);
    relus[r].assign((r + 1) * 144, NAN);
  }
  std::vector<std::thread> threads;
  for (size_t r = 0; r < runs; ++r) {
    threads.emplace_back([&, r] {
      for (int rep = 0; rep < 20; ++rep) {
        const float* in[] = {xs[r].data()};
        float* out[] = {probs[r].data(), relus[r].data()};
        plan.run(in, out, r + 1);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t r = 0; r < runs; ++r) {
    auto want = step_by_step(spec, xs[r], r + 1);
    check(same(probs[r], want[8]) && same(relus[r], want[2]), "concurrent run " + std::to_string(r));
  }
}

// One-step specs of every op family, valid before mutation.
std::vector<kiln::PlanSpec> seeds(Weights& w, std::mt19937& rng) {
  std::vector<kiln::PlanSpec> out;
  auto one = [&](kiln::PlanShape in, kiln::PlanShape o, kiln::PlanStepSpec s) {
    kiln::PlanSpec spec;
    spec.values = {std::move(in), std::move(o)};
    spec.inputs = {0};
    spec.outputs = {1};
    s.inputs = {0};
    s.outputs = {1};
    spec.steps = {s};
    out.push_back(spec);
  };
  auto conv = step("Conv", {}, {});
  conv.attrs["kernel"] = list({3, 3});
  conv.attrs["strides"] = list({2, 1});
  conv.attrs["pads"] = list({1, 0, 1, 2});
  conv.attrs["group"] = num(2);
  conv.weights["W"] = w.make({4, 1, 3, 3}, rng);
  one({2, 7, 6}, {4, 4, 6}, conv);
  auto fused = conv;
  fused.attrs["pool"] = text("MaxPool");
  fused.attrs["pool_kernel"] = list({2, 2});
  fused.attrs["pool_strides"] = list({2, 2});
  one({2, 7, 6}, {4, 2, 3}, fused);
  auto ct = step("ConvTranspose", {}, {});
  ct.attrs["kernel"] = list({2, 3});
  ct.attrs["strides"] = list({2, 2});
  ct.attrs["pads"] = list({0, 1, 1, 0});
  ct.weights["W"] = w.make({2, 3, 2, 3}, rng);
  one({2, 3, 4}, {3, 5, 8}, ct);
  auto gemm = step("Gemm", {}, {});
  gemm.attrs["transB"] = num(1);
  gemm.weights["B"] = w.make({3, 5}, rng);
  gemm.weights["C"] = w.make({3}, rng);
  one({5}, {3}, gemm);
  auto mm = step("MatMul", {}, {});
  mm.weights["B"] = w.make({2, 4, 3}, rng);
  one({2, 5, 4}, {2, 5, 3}, mm);
  auto pool = step("AveragePool", {}, {});
  pool.attrs["kernel"] = list({3, 2});
  pool.attrs["strides"] = list({2, 2});
  pool.attrs["pads"] = list({1, 1, 1, 0});
  pool.attrs["ceilMode"] = num(1);
  pool.attrs["countIncludePad"] = num(1);
  one({3, 7, 5}, {3, 4, 3}, pool);
  auto add = step("Add", {}, {});
  add.weights["B"] = w.make({3, 1, 1}, rng);
  one({3, 2, 4}, {3, 2, 4}, add);
  auto tr = step("Transpose", {}, {});
  tr.attrs["perm"] = list({0, 3, 1, 2});
  one({2, 3, 4}, {4, 2, 3}, tr);
  auto pad = step("Pad", {}, {});
  pad.attrs["pads"] = list({0, 1, 2, 0, 2, 1});
  pad.attrs["mode"] = text("reflect");
  one({3, 4}, {6, 7}, pad);
  auto sm = step("LogSoftmax", {}, {});
  sm.attrs["axis"] = num(2);
  one({3, 4}, {3, 4}, sm);
  auto lrn = step("LRN", {}, {});
  lrn.attrs["size"] = num(3);
  one({5, 2, 2}, {5, 2, 2}, lrn);
  auto bn = step("BatchNormalization", {}, {});
  for (const char* n : {"scale", "B", "mean", "var"}) bn.weights[n] = w.make({3}, rng);
  one({3, 4}, {3, 4}, bn);
  auto ln = step("LayerNormalization", {}, {});
  ln.attrs["axis"] = num(2);
  ln.weights["scale"] = w.make({20}, rng);
  ln.weights["B"] = w.make({20}, rng);
  one({3, 4, 5}, {3, 4, 5}, ln);
  auto ln_stats = step("LayerNormalization", {}, {});
  ln_stats.attrs["axis"] = num(2);
  ln_stats.attrs["output"] = text("InvStdDev");
  one({3, 4, 5}, {3, 1, 1}, ln_stats);
  auto gn = step("GroupNormalization", {}, {});
  gn.attrs["groups"] = num(2);
  gn.weights["scale"] = w.make({6}, rng);
  gn.weights["B"] = w.make({6}, rng);
  one({6, 3, 5}, {6, 3, 5}, gn);
  one({3, 4}, {12}, step("Reshape", {}, {}));
  one({3, 4, 5}, {3, 1, 1}, step("GlobalMaxPool", {}, {}));
  return out;
}

void mutate(kiln::PlanSpec& spec, std::mt19937& rng, Weights& w) {
  std::uniform_int_distribution<int> pick(0, 6);
  std::uniform_int_distribution<int> small(-2, 9);
  auto& s = spec.steps[0];
  switch (pick(rng)) {
    case 0: {  // a dimension of a value
      auto& v = spec.values[rng() % spec.values.size()];
      if (!v.empty()) v[rng() % v.size()] = static_cast<size_t>(std::max(0, small(rng)));
      break;
    }
    case 1: {  // an attribute entry
      if (s.attrs.empty()) break;
      auto it = s.attrs.begin();
      std::advance(it, rng() % s.attrs.size());
      if (it->second.kind == kiln::PlanAttr::kList && !it->second.list.empty()) {
        it->second.list[rng() % it->second.list.size()] = small(rng);
      } else if (it->second.kind == kiln::PlanAttr::kList) {
        it->second.list.push_back(small(rng));
      } else {
        it->second.number = small(rng);
      }
      break;
    }
    case 2: {  // a weight shape (the data length stays)
      if (s.weights.empty()) break;
      auto it = s.weights.begin();
      std::advance(it, rng() % s.weights.size());
      auto& shape = it->second.shape;
      if (!shape.empty()) shape[rng() % shape.size()] = static_cast<size_t>(std::max(0, small(rng)));
      break;
    }
    case 3: {  // a weight replaced by one of another shape, consistent with its data
      if (s.weights.empty()) break;
      auto it = s.weights.begin();
      std::advance(it, rng() % s.weights.size());
      std::vector<size_t> shape = it->second.shape;
      if (!shape.empty()) shape[rng() % shape.size()] = static_cast<size_t>(1 + rng() % 6);
      it->second = w.make(shape, rng);
      break;
    }
    case 4:  // an id
      if (rng() % 2) s.inputs[0] = small(rng); else s.outputs[0] = small(rng);
      break;
    case 5:  // a list attribute of another length
      if (!s.attrs.empty()) {
        auto it = s.attrs.begin();
        std::advance(it, rng() % s.attrs.size());
        if (it->second.kind == kiln::PlanAttr::kList) {
          if (rng() % 2 && !it->second.list.empty()) it->second.list.pop_back(); else it->second.list.push_back(1);
        }
      }
      break;
    default:  // a value's rank
      {
        auto& v = spec.values[rng() % spec.values.size()];
        if (rng() % 2 && !v.empty()) v.pop_back(); else v.push_back(1 + rng() % 3);
      }
  }
}

void test_fuzz(int iterations) {
  std::mt19937 rng(3);
  Weights w;
  const auto base = seeds(w, rng);
  // Every seed is valid before mutation.
  for (const auto& spec : base) {
    try {
      kiln::Plan p(spec);
      check(true, "");
    } catch (const kiln::PlanError& e) {
      check(false, std::string("seed spec ") + spec.steps[0].op + ": " + e.what());
    }
  }
  size_t built = 0, refused = 0;
  for (int iter = 0; iter < iterations; ++iter) {
    kiln::PlanSpec spec = base[iter % base.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) mutate(spec, rng, w);
    try {
      kiln::Plan plan(spec);
      ++built;
      for (size_t batch : {1, 3}) {
        std::vector<std::vector<float>> in(plan.num_inputs()), out(plan.num_outputs());
        std::vector<const float*> ip;
        std::vector<float*> op;
        for (size_t i = 0; i < in.size(); ++i) {
          in[i].assign(batch * plan.input_size(i), 0.5f);
          ip.push_back(in[i].data());
        }
        for (size_t i = 0; i < out.size(); ++i) {
          out[i].assign(batch * plan.output_size(i), NAN);
          op.push_back(out[i].data());
        }
        plan.run(ip.data(), op.data(), batch);
      }
    } catch (const kiln::PlanError&) {
      ++refused;
    } catch (const std::exception& e) {
      check(false, std::string("fuzz: unexpected exception type: ") + e.what());
    }
  }
  std::printf("fuzz: %zu mutated specs built and ran, %zu refused with PlanError\n", built, refused);
  check(built > 0 && refused > 0, "fuzz explores both valid and invalid specs");
}

}  // namespace

// Resize (nearest 2x, linear), Slice (negative steps), Tile, Concat with a constant, against
// values worked out by hand, and a Slice reaching outside its input refused.
void test_data_movement() {
  auto run1 = [](kiln::PlanSpec spec, const std::vector<float>& x, size_t batch) {
    std::vector<float> y(batch * numel(spec.values[spec.outputs[0]]), NAN);
    const float* in = x.data();
    float* out = y.data();
    kiln::Plan(spec).run(&in, &out, batch);
    return y;
  };
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // batch 2 of [1, 2, 3]
  {
    kiln::PlanSpec spec;
    spec.values = {{1, 2, 3}, {1, 4, 6}};
    spec.inputs = {0};
    spec.outputs = {1};
    auto r = step("Resize", {0}, {1});
    r.attrs["coordinate_transformation_mode"] = text("asymmetric");
    r.attrs["nearest_mode"] = text("floor");
    r.attrs["scales"] = list({2, 2});
    spec.steps = {r};
    const auto y = run1(spec, x, 2);
    check(y[0] == 1 && y[1] == 1 && y[2] == 2 && y[5] == 3 && y[6] == 1 && y[12] == 4 && y[23] == 6 && y[24] == 7 && y[47] == 12,
          "Resize nearest 2x");
    spec.steps[0].attrs["mode"] = text("linear");
    spec.steps[0].attrs["coordinate_transformation_mode"] = text("align_corners");
    spec.values[1] = {1, 3, 5};
    const auto z = run1(spec, x, 1);
    // align_corners: rows 1, 2.5, 4 ... ; the middle row, middle column: mean of the four corners' rows.
    check(z.size() == 15 && z[0] == 1 && z[4] == 3 && z[7] == 3.5f && z[14] == 6, "Resize linear align_corners");
  }
  {
    kiln::PlanSpec spec;
    spec.values = {{1, 2, 3}, {1, 2, 2}};
    spec.inputs = {0};
    spec.outputs = {1};
    auto sl = step("Slice", {0}, {1});
    sl.attrs["starts"] = list({0, 1, 2});
    sl.attrs["steps"] = list({1, -1, -2});
    spec.steps = {sl};
    const auto y = run1(spec, x, 2);
    check(y == std::vector<float>({6, 4, 3, 1, 12, 10, 9, 7}), "Slice with negative steps");
    spec.steps[0].attrs["starts"] = list({0, 1, 1});
    bool refused = false;
    try {
      kiln::Plan p(spec);
    } catch (const kiln::PlanError&) {
      refused = true;
    }
    check(refused, "Slice reaching outside its input refused");
  }
  {
    kiln::PlanSpec spec;
    spec.values = {{1, 2, 3}, {1, 2, 6}};
    spec.inputs = {0};
    spec.outputs = {1};
    auto t = step("Tile", {0}, {1});
    t.attrs["repeats"] = list({1, 1, 2});
    spec.steps = {t};
    const auto y = run1(spec, x, 1);
    check(y == std::vector<float>({1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}), "Tile");
  }
  {
    kiln::PlanSpec spec;
    spec.values = {{1, 2, 3}, {1, 2, 4}};
    spec.inputs = {0};
    spec.outputs = {1};
    auto c = step("Concat", {0}, {1});
    c.attrs["axis"] = num(3);
    std::vector<float> k = {-1, -2};
    kiln::PlanTensor w;
    w.data = k.data();
    w.raw = k.data();
    w.length = 2;
    w.shape = {1, 1, 2, 1};
    c.weights["c0"] = w;
    spec.steps = {c};
    const auto y = run1(spec, x, 2);
    check(y == std::vector<float>({-1, 1, 2, 3, -2, 4, 5, 6, -1, 7, 8, 9, -2, 10, 11, 12}), "Concat with a constant first input");
  }
}

// ArgMax / ArgMin steps on random odd shapes, every per-image axis, keepdims and
// select_last_index, against the definition walked element by element (ties from small integers,
// NaN mixed in: a NaN first is kept, a later one never wins); outputs NaN-filled beforehand.
void test_arg_reduce() {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> dim(1, 7), small(-2, 2), pct(0, 99);
  int cases = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const size_t rank = 1 + trial % 3;
    kiln::PlanShape shape(rank);
    for (auto& d : shape) d = static_cast<size_t>(dim(rng));
    const size_t batch = 1 + trial % 3;
    std::vector<float> x(batch * numel(shape));
    for (auto& v : x) v = pct(rng) < 10 ? NAN : static_cast<float>(small(rng));
    for (size_t axis = 1; axis <= rank; ++axis) {
      for (int keep = 0; keep < 2; ++keep) {
        for (int last = 0; last < 2; ++last) {
          for (const char* op : {"ArgMax", "ArgMin"}) {
            kiln::PlanShape out;
            for (size_t d = 0; d < rank; ++d) {
              if (d + 1 != axis) out.push_back(shape[d]);
              else if (keep) out.push_back(1);
            }
            kiln::PlanSpec spec;
            spec.values = {shape, out};
            spec.inputs = {0};
            spec.outputs = {1};
            auto st = step(op, {0}, {1});
            st.attrs["axis"] = num(static_cast<double>(axis));
            st.attrs["keepdims"] = num(keep);
            st.attrs["select_last_index"] = num(last);
            spec.steps = {st};
            std::vector<float> y(batch * numel(out), NAN);
            const float* in = x.data();
            float* o = y.data();
            kiln::Plan(spec).run(&in, &o, batch);
            // Expected: for every input position with index 0 along the axis, walk the axis.
            size_t stride = 1;
            for (size_t d = axis; d < rank; ++d) stride *= shape[d];
            const size_t count = shape[axis - 1];
            const bool max = std::string(op) == "ArgMax";
            bool ok = true;
            size_t k = 0;
            for (size_t p = 0; p < x.size(); ++p) {
              if ((p / stride) % count != 0) continue;
              size_t at = 0;
              for (size_t r = 1; r < count; ++r) {
                const float v = x[p + r * stride], b = x[p + at * stride];
                if (max ? (v > b || (last && v == b)) : (v < b || (last && v == b))) at = r;
              }
              ok = ok && k < y.size() && y[k] == static_cast<float>(at);
              ++k;
            }
            check(ok && k == y.size(), std::string(op) + " against its definition");
            ++cases;
          }
        }
      }
    }
  }
  check(cases > 300, "ArgMax / ArgMin cases run");
}

// MaxPool steps (the planar kernels for usual windows, the window loop for strides past 4)
// against the definition on random geometries with NaNs, padding, dilation and ceil mode, on
// every ISA this CPU has.
void test_max_pool() {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> pct(0, 99);
  std::uniform_real_distribution<float> u(-1, 1);
  int cases = 0;
  for (kiln::Isa isa : kiln_test::isas_to_test()) {
    kiln::set_active_isa(isa);
    for (int trial = 0; trial < 120; ++trial) {
      const size_t c = 1 + rng() % 3, batch = 1 + rng() % 2;
      const int64_t kh = 1 + rng() % 4, kw = 1 + rng() % 5, sh = 1 + rng() % (trial % 10 == 0 ? 6 : 3),
                    sw = 1 + rng() % 3, dh = 1 + rng() % 2, dw = 1 + rng() % 2;
      const int64_t pt = rng() % (dh * (kh - 1) + 1), pl = rng() % (dw * (kw - 1) + 1);
      const int64_t pb = rng() % (dh * (kh - 1) + 1), pr = rng() % (dw * (kw - 1) + 1);
      const int64_t h = dh * (kh - 1) + 1 + rng() % 20, w = dw * (kw - 1) + 1 + rng() % 40;
      const bool ceil = rng() % 2 == 1;
      auto out_len = [&](int64_t in, int64_t k, int64_t s, int64_t d, int64_t b, int64_t e) {
        const int64_t avail = in + b + e - (d * (k - 1) + 1);
        int64_t o = (ceil ? avail + s - 1 : avail) / s + 1;
        if (ceil && (o - 1) * s >= in + b) --o;
        return o;
      };
      const int64_t oh = out_len(h, kh, sh, dh, pt, pb), ow = out_len(w, kw, sw, dw, pl, pr);
      kiln::PlanSpec spec;
      spec.values = {{c, size_t(h), size_t(w)}, {c, size_t(oh), size_t(ow)}};
      spec.inputs = {0};
      spec.outputs = {1};
      auto st = step("MaxPool", {0}, {1});
      st.attrs["kernel"] = list({double(kh), double(kw)});
      st.attrs["strides"] = list({double(sh), double(sw)});
      st.attrs["dilations"] = list({double(dh), double(dw)});
      st.attrs["pads"] = list({double(pt), double(pl), double(pb), double(pr)});
      st.attrs["ceilMode"] = num(ceil ? 1 : 0);
      spec.steps = {st};
      std::vector<float> x(batch * c * h * w);
      for (float& v : x) v = pct(rng) < 3 ? NAN : u(rng);
      std::vector<float> y(batch * c * oh * ow, 12345.0f);
      const float* in = x.data();
      float* o = y.data();
      kiln::Plan(spec).run(&in, &o, batch);
      bool ok = true;
      for (size_t p = 0; p < batch * c; ++p) {
        for (int64_t i = 0; i < oh; ++i) {
          for (int64_t j = 0; j < ow; ++j) {
            float best = -INFINITY;
            bool nan = false;
            for (int64_t a = 0; a < kh; ++a) {
              for (int64_t b = 0; b < kw; ++b) {
                const int64_t r = i * sh + a * dh - pt, q = j * sw + b * dw - pl;
                if (r < 0 || r >= h || q < 0 || q >= w) continue;
                const float v = x[p * h * w + r * w + q];
                nan |= std::isnan(v);
                best = v > best ? v : best;
              }
            }
            const float got = y[(p * oh + i) * ow + j];
            ok = ok && (nan ? std::isnan(got) : got == best);
          }
        }
      }
      check(ok, std::string("MaxPool against its definition [") + kiln::isa_name(isa) + "] " + std::to_string(kh) +
                    "x" + std::to_string(kw) + " s" + std::to_string(sh) + "x" + std::to_string(sw) + " d" +
                    std::to_string(dh) + "x" + std::to_string(dw) + " on " + std::to_string(h) + "x" +
                    std::to_string(w) + (ceil ? " ceil" : ""));
      ++cases;
    }
  }
  kiln::set_active_isa(kiln::best_isa());
  check(cases >= 120, "MaxPool cases run");
}

// A loan that records its calls and, at release, overwrites the lent arrays with NaN as a caller
// taking its memory back would: any step reading the inputs after the release changes the result.
class PoisoningLoan final : public kiln::Plan::InputLoan {
 public:
  PoisoningLoan(std::vector<float>* lent, std::vector<float>* copies, bool lend) : lent_(lent), copies_(copies), lend_(lend) {
    lent_ptrs_.push_back(lent_->data());
    copy_ptrs_.push_back(copies_->data());
  }
  Taken take() override {
    ++takes;
    return {lend_ ? lent_ptrs_.data() : copy_ptrs_.data(), lend_};
  }
  void release() override {
    ++releases;
    for (float& v : *lent_) v = std::nanf("");
    if (watched != nullptr) output_written_at_release = (*watched)[0] != kSentinel;
  }
  static constexpr float kSentinel = -7.0f;
  int takes = 0, releases = 0;
  const std::vector<float>* watched = nullptr;  // an output, sentinel-filled before the run
  bool output_written_at_release = false;

 private:
  std::vector<float>* lent_;
  std::vector<float>* copies_;
  bool lend_;
  std::vector<const float*> lent_ptrs_, copy_ptrs_;
};

// x[2,4,4] -> QuantizeLinear (NCHW -> NHWC) -> DequantizeLinear -> Relu (-> Add x, when read later)
kiln::PlanSpec quantized(bool input_read_later) {
  kiln::PlanSpec spec;
  spec.values = {{2, 4, 4}, {2, 4, 4}, {2, 4, 4}, {2, 4, 4}, {2, 4, 4}};
  spec.value_dtypes = {kiln::PlanDType::kFloat32, kiln::PlanDType::kUint8, kiln::PlanDType::kFloat32,
                       kiln::PlanDType::kFloat32, kiln::PlanDType::kFloat32};
  spec.inputs = {0};
  auto q = step("QuantizeLinear", {0}, {1});
  q.attrs["scale"] = num(0.01);
  q.attrs["zero_point"] = num(128);
  q.attrs["channels"] = num(2);
  auto dq = step("DequantizeLinear", {1}, {2});
  dq.attrs["scale"] = num(0.01);
  dq.attrs["zero_point"] = num(128);
  dq.attrs["channels"] = num(2);
  spec.steps = {q, dq, step("Relu", {2}, {3})};
  if (input_read_later) {
    spec.steps.push_back(step("Add", {3, 0}, {4}));
    spec.outputs = {4};
  } else {
    spec.values.pop_back();
    spec.value_dtypes.pop_back();
    spec.outputs = {3};
  }
  return spec;
}

// Plan::run(InputLoan&): an int8 entry (QuantizeLinear first, its only reader) gives the inputs
// back right after that step, a float plan only at its end, and both give the result of run() on
// arrays the caller keeps; a run that throws still gives them back, once.
void test_input_loan() {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  const size_t batch = 3;
  Weights w;
  struct Case {
    std::string name;
    kiln::PlanSpec spec;
    bool read_first;
  };
  std::vector<Case> cases = {{"QuantizeLinear first", quantized(false), true},
                             {"QuantizeLinear first, input read again by a later Add", quantized(true), false},
                             {"float network (Conv first)", network(w, rng), false}};
  for (const Case& c : cases) {
    const kiln::Plan plan(c.spec);
    check(plan.inputs_read_first() == c.read_first, c.name + ": inputs_read_first() is " + (c.read_first ? "true" : "false"));
    std::vector<float> x(batch * plan.input_size(0));
    for (float& v : x) v = u(rng);
    std::vector<std::vector<float>> want(plan.num_outputs()), got_lent(plan.num_outputs()), got_copied(plan.num_outputs());
    std::vector<float*> want_ptrs, lent_ptrs, copied_ptrs;
    for (size_t o = 0; o < plan.num_outputs(); ++o) {
      want[o].assign(batch * plan.output_size(o), 0.0f);
      got_lent[o].assign(batch * plan.output_size(o), PoisoningLoan::kSentinel);
      got_copied[o].assign(batch * plan.output_size(o), PoisoningLoan::kSentinel);
      want_ptrs.push_back(want[o].data());
      lent_ptrs.push_back(got_lent[o].data());
      copied_ptrs.push_back(got_copied[o].data());
    }
    const float* xp = x.data();
    plan.run(&xp, want_ptrs.data(), batch);
    for (bool lend : {true, false}) {
      std::vector<float> lent = x, copies = x;
      PoisoningLoan loan(&lent, &copies, lend);
      const auto& got = lend ? got_lent : got_copied;
      loan.watched = &got[0];
      plan.run(loan, lend ? lent_ptrs.data() : copied_ptrs.data(), batch);
      check(loan.takes == 1 && loan.releases == 1, c.name + (lend ? " (lent)" : " (copies)") + ": take and release once each");
      // Released before the last step (the output still a sentinel) only where the inputs are read first.
      check(loan.output_written_at_release == !c.read_first,
            c.name + (lend ? " (lent)" : " (copies)") + ": released " + (c.read_first ? "before" : "after") + " the step writing the output");
      bool same = true;
      for (size_t o = 0; o < got.size(); ++o) same &= std::memcmp(got[o].data(), want[o].data(), got[o].size() * sizeof(float)) == 0;
      check(same, c.name + (lend ? " (lent)" : " (copies)") + ": the outputs of run() on arrays the caller keeps, with the lent ones poisoned at release");
    }
    // A run that throws (batch 0) gives the loan back all the same.
    std::vector<float> lent = x, copies = x;
    PoisoningLoan loan(&lent, &copies, true);
    bool threw = false;
    try {
      plan.run(loan, lent_ptrs.data(), 0);
    } catch (const kiln::PlanError&) {
      threw = true;
    }
    check(threw && loan.releases == 1 && loan.takes == 0, c.name + ": a refused run releases its loan once without taking it");
  }
}

// A batch in passes (images_per_pass): the bits of the whole batch in one pass, every output
// written (NaN-filled before), for passes that divide the batch and for a last short one; lent
// inputs are copied before several passes read them. The plan's own choice: whole batches where
// the values fit in the caches, where the multiply-adds per byte are many or unknown, or where
// the first steps read lent inputs; else kPassImagesPerThread images per thread.
void test_images_per_pass() {
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(-1, 1);
  Weights w;
  const kiln::PlanSpec whole = network(w, rng);
  const size_t batch = 7;
  std::vector<float> x(batch * 72);
  for (float& v : x) v = u(rng);
  const float* in[] = {x.data()};
  std::vector<float> want_probs(batch * 5, NAN), want_relu(batch * 144, NAN);
  float* want_out[] = {want_probs.data(), want_relu.data()};
  kiln::Plan(whole).run(in, want_out, batch);
  for (size_t images : {1, 3, 7, 9}) {
    kiln::PlanSpec spec = whole;
    spec.images_per_pass = images;
    const kiln::Plan plan(spec);
    check(plan.images_per_pass(batch) == std::min(images, batch), "images_per_pass(7) with spec " + std::to_string(images));
    std::vector<float> probs(batch * 5, NAN), relu(batch * 144, NAN);
    float* out[] = {probs.data(), relu.data()};
    plan.run(in, out, batch);
    const bool same_bits = std::memcmp(probs.data(), want_probs.data(), probs.size() * sizeof(float)) == 0 &&
                           std::memcmp(relu.data(), want_relu.data(), relu.size() * sizeof(float)) == 0;
    check(same_bits, "passes of " + std::to_string(images) + " images give the whole batch's bits");
  }
  // Lent inputs read by several passes: copied, then given back at once (poisoned then).
  {
    kiln::PlanSpec spec = quantized(false);
    const kiln::Plan keep(spec);
    spec.images_per_pass = 2;
    const kiln::Plan plan(spec);
    std::vector<float> xq(5 * plan.input_size(0));
    for (float& v : xq) v = u(rng);
    std::vector<float> want(5 * plan.output_size(0), 0.0f), got(want.size(), PoisoningLoan::kSentinel);
    const float* xp = xq.data();
    float* wp = want.data();
    keep.run(&xp, &wp, 5);
    std::vector<float> lent = xq, copies = xq;
    PoisoningLoan loan(&lent, &copies, true);
    float* gp = got.data();
    plan.run(loan, &gp, 5);
    check(loan.takes == 1 && loan.releases == 1, "passes over lent inputs: take and release once each");
    check(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0,
          "passes over lent inputs (poisoned at release) give the whole batch's bits");
  }
  // The plan's choice, on x[8,128,128] -> Relu -> (Sigmoid, Add): 512 KiB of values per image
  // (the Relu's output lives in the plan output's buffer, the Sigmoid's in the arena).
  kiln::PlanSpec big;
  big.values = {{8, 128, 128}, {8, 128, 128}, {8, 128, 128}, {8, 128, 128}};
  big.inputs = {0};
  big.outputs = {3};
  big.steps = {step("Relu", {0}, {1}), step("Sigmoid", {1}, {2}), step("Add", {1, 2}, {3})};
  check(kiln::Plan(big).info().arena_floats_per_image == 8 * 128 * 128, "512 KiB of values per image");
  const size_t per_thread = 4, threads = kiln::num_threads();
  big.macs_per_image = 1e6;  // ~2 per byte: bound by memory
  {
    const kiln::Plan plan(big);
    check(plan.images_per_pass(64) == per_thread * threads, "64 images of 512 KiB, few multiply-adds: passes of 4 per thread");
    check(plan.images_per_pass(per_thread * threads) == per_thread * threads, "a batch of one pass stays whole");
    check(plan.images_per_pass(16) == 16 || 16 * 512 * 1024 > (16u << 20), "a batch within 16 MiB stays whole");
  }
  big.macs_per_image = 1e9;  // ~2000 per byte: bound by the multiply-adds
  check(kiln::Plan(big).images_per_pass(64) == 64, "many multiply-adds per byte: the batch stays whole");
  big.macs_per_image = 0;
  check(kiln::Plan(big).images_per_pass(64) == 64, "unknown multiply-adds: the batch stays whole");
}

int main(int argc, char** argv) {
  test_max_pool();
  test_data_movement();
  test_arg_reduce();
  test_storage_planning();
  test_input_loan();
  test_images_per_pass();
  test_concurrent_runs();
  test_fuzz(argc > 1 ? std::atoi(argv[1]) : 3000);
  return kiln_test::finish();
}
