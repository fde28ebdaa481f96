// Convolution throughput on the SeedCNN MNIST layers at batch 64, against the single-core FMA peak
// measured in the same run, plus a native-only estimate of one SeedCNN training step.
//   conv-bench [isa [threads]]     (default: the best ISA, every core)
// Each figure is the median of repeated timed runs after a warm-up.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "kiln/conv.h"
#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/elementwise.h"
#include "kiln/f32-gemm.h"
#include "kiln/pool.h"
#include "kiln/thread-pool.h"

#include "bench-common.h"

namespace {

using Clock = std::chrono::steady_clock;

// Median wall seconds of one call over runs adding up to about `budget_ms`, and the mean process
// CPU seconds per call (all threads): on a shared machine the wall figure includes waiting for
// cores other processes hold, the CPU figure does not.
struct Timing {
  double wall = 0, cpu = 0;
};

template <typename Fn>
Timing measure(Fn&& fn, double budget_ms) {
  fn();
  std::vector<double> times;
  const auto start = Clock::now();
  const double cpu0 = kiln_bench::process_cpu_seconds();
  do {
    const auto t0 = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  } while (times.size() < 5 || std::chrono::duration<double, std::milli>(Clock::now() - start).count() < budget_ms);
  const double cpu = (kiln_bench::process_cpu_seconds() - cpu0) / static_cast<double>(times.size());
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], cpu};
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

kiln::Conv2dGeometry conv3x3(size_t cin, size_t cout, size_t hw) {
  kiln::Conv2dGeometry g;
  g.in_channels = cin;
  g.out_channels = cout;
  g.in_height = g.in_width = hw;
  g.kernel_h = g.kernel_w = 3;
  g.out_height = g.out_width = hw - 2;
  return g;
}

kiln::Pool2dGeometry pool2x2(size_t planes, size_t hw) {
  kiln::Pool2dGeometry p;
  p.planes = planes;
  p.in_height = p.in_width = hw;
  p.kernel_h = p.kernel_w = 2;
  p.stride_h = p.stride_w = 2;
  p.out_height = p.out_width = hw / 2;
  return p;
}

struct Layer {
  kiln::Conv2dGeometry g;
  std::vector<float> input, weight, bias, output, grad_output, grad_input, grad_weight, grad_bias;
  Layer(const kiln::Conv2dGeometry& geometry, size_t batch) : g(geometry) {
    input = random_floats(batch * g.in_channels * g.in_plane(), 1);
    weight = random_floats(g.weight_size(), 2);
    bias = random_floats(g.out_channels, 3);
    output.resize(batch * g.out_channels * g.out_plane());
    grad_output = random_floats(output.size(), 4);
    grad_input.resize(input.size());
    grad_weight.resize(weight.size());
    grad_bias.resize(g.out_channels);
  }
  double macs(size_t batch) const { return double(batch) * g.out_channels * g.out_plane() * g.patch(); }
};

void report(const char* name, const Timing& t, double flops, double peak, size_t threads) {
  std::printf("%-36s %8.3f ms wall %8.3f ms cpu", name, t.wall * 1e3, t.cpu * 1e3);
  if (flops > 0) {
    const double wall_gflops = flops / t.wall * 1e-9;
    const double cpu_gflops = flops / t.cpu * 1e-9;
    std::printf(" %7.1f GFLOP/s (%4.1f%% of %zu-core peak), %6.1f per cpu-second (%4.1f%% of peak)", wall_gflops,
                100.0 * wall_gflops / (peak * threads), threads, cpu_gflops, 100.0 * cpu_gflops / peak);
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (!kiln_bench::select_isa(argc > 1 ? argv[1] : nullptr)) return 2;
  if (argc > 2) kiln::set_num_threads(static_cast<size_t>(std::stoul(argv[2])));
  const size_t threads = kiln::num_threads();
  double peak = 0;
  for (int i = 0; i < 5; ++i) peak = std::max(peak, kiln::measure_f32_peak_gflops(100.0));
  const size_t batch = 64;
  std::printf("ISA %s, %zu threads, single-core FMA peak %.1f GFLOP/s, batch %zu\n",
              kiln::isa_name(kiln::active_isa()), threads, peak, batch);

  Layer c1(conv3x3(1, 32, 28), batch);
  Layer c2(conv3x3(32, 64, 13), batch);
  const double budget = 400;

  const Timing f1 = measure([&] { kiln::conv2d_forward(c1.g, batch, c1.input.data(), c1.weight.data(), c1.bias.data(), true, c1.output.data()); }, budget);
  report("conv1 forward (+bias+relu)", f1, 2 * c1.macs(batch), peak, threads);
  const Timing f2 = measure([&] { kiln::conv2d_forward(c2.g, batch, c2.input.data(), c2.weight.data(), c2.bias.data(), true, c2.output.data()); }, budget);
  report("conv2 forward (+bias+relu)", f2, 2 * c2.macs(batch), peak, threads);
  // The inference path: plans packed once; conv+bias+ReLU+2x2 max pool fused when the ISA allows.
  for (Layer* l : {&c1, &c2}) {
    const kiln::Conv2dPlan plan(l->g, l->weight.data(), l->bias.data(), true);
    kiln::ConvMaxPool pool;
    pool.kernel_h = pool.kernel_w = pool.stride_h = pool.stride_w = 2;
    pool.out_h = l->g.out_height / 2;
    pool.out_w = l->g.out_width / 2;
    std::vector<float> scratch(std::max(plan.scratch_floats(batch), plan.max_pooled_scratch_floats(batch, pool)));
    std::vector<float> pooled(batch * l->g.out_channels * pool.out_h * pool.out_w);
    const Timing tp = measure([&] { plan.run(l->input.data(), l->output.data(), batch, scratch.data()); }, budget);
    report(l == &c1 ? "conv1 plan (+bias+relu)" : "conv2 plan (+bias+relu)", tp, 2 * l->macs(batch), peak, threads);
    if (plan.can_fuse_max_pool()) {
      const Timing tf = measure([&] { plan.run_max_pooled(l->input.data(), pooled.data(), batch, pool, scratch.data()); }, budget);
      report(l == &c1 ? "conv1 plan (+bias+relu+maxpool)" : "conv2 plan (+bias+relu+maxpool)", tf, 2 * l->macs(batch), peak, threads);
    }
  }
  const Timing b1 = measure([&] { kiln::conv2d_backward(c1.g, batch, c1.input.data(), c1.weight.data(), c1.grad_output.data(), nullptr, c1.grad_weight.data(), c1.grad_bias.data()); }, budget);
  report("conv1 backward (weight, bias)", b1, 2 * c1.macs(batch), peak, threads);
  const Timing b2 = measure([&] { kiln::conv2d_backward(c2.g, batch, c2.input.data(), c2.weight.data(), c2.grad_output.data(), c2.grad_input.data(), c2.grad_weight.data(), c2.grad_bias.data()); }, budget);
  report("conv2 backward (input, weight, bias)", b2, 4 * c2.macs(batch), peak, threads);
  const Timing b2w = measure([&] { kiln::conv2d_backward(c2.g, batch, c2.input.data(), c2.weight.data(), c2.grad_output.data(), nullptr, c2.grad_weight.data(), nullptr); }, budget);
  report("  of which weight gradient", b2w, 2 * c2.macs(batch), peak, threads);
  const Timing b2i = measure([&] { kiln::conv2d_backward(c2.g, batch, c2.input.data(), c2.weight.data(), c2.grad_output.data(), c2.grad_input.data(), nullptr, nullptr); }, budget);
  report("  of which input gradient", b2i, 2 * c2.macs(batch), peak, threads);

  // The rest of a SeedCNN training step, natively: pools, ReLU backward, the two Linear layers,
  // softmax cross-entropy and an SGD step over every parameter.
  const kiln::Pool2dGeometry p1 = pool2x2(batch * 32, 26), p2 = pool2x2(batch * 64, 11);
  std::vector<float> pool1(batch * 32 * 13 * 13), pool2(batch * 64 * 5 * 5), gpool1(pool1.size()), gpool2(pool2.size());
  std::vector<int32_t> idx1(pool1.size()), idx2(pool2.size());
  std::vector<float> fc1w = random_floats(128 * 1600, 5), fc1b(128), h(batch * 128), gh(h.size());
  std::vector<float> fc2w = random_floats(10 * 128, 6), fc2b(10), logits(batch * 10), glogits(logits.size()), losses(batch);
  std::vector<float> gfc1w(fc1w.size()), gfc2w(fc2w.size()), gfc1b(128), gfc2b(10);
  std::vector<int32_t> labels(batch);
  for (size_t i = 0; i < batch; ++i) labels[i] = static_cast<int32_t>(i % 10);
  std::vector<float> params = random_floats(c1.weight.size() + c2.weight.size() + fc1w.size() + fc2w.size() + 32 + 64 + 138, 7);
  std::vector<float> grads = random_floats(params.size(), 8), velocity(params.size());
  kiln::SgdOptions sgd;
  sgd.momentum = 0.9;

  kiln::GemmEpilogue e1;
  e1.bias = fc1b.data();
  e1.bias_mode = kiln::BiasMode::kPerColumn;
  e1.relu = true;
  kiln::GemmEpilogue e2;
  e2.bias = fc2b.data();
  e2.bias_mode = kiln::BiasMode::kPerColumn;
  const Timing pools = measure([&] {
    kiln::max_pool2d_forward(p1, c1.output.data(), pool1.data(), idx1.data());
    kiln::max_pool2d_forward(p2, c2.output.data(), pool2.data(), idx2.data());
    kiln::max_pool2d_backward(p2, gpool2.data(), idx2.data(), c2.grad_output.data());
    kiln::max_pool2d_backward(p1, c2.grad_input.data(), idx1.data(), c1.grad_output.data());
  }, budget);
  report("max pools forward + backward", pools, 0, peak, threads);
  const Timing relus = measure([&] {
    kiln::relu_backward(c2.output.data(), c2.grad_output.data(), c2.grad_output.data(), c2.output.size());
    kiln::relu_backward(c1.output.data(), c1.grad_output.data(), c1.grad_output.data(), c1.output.size());
  }, budget);
  report("conv ReLU backward", relus, 0, peak, threads);
  const double fc_flops = 2.0 * batch * (1600 * 128 + 128 * 10) * 3;
  const Timing fc = measure([&] {
    kiln::sgemm(false, true, batch, 128, 1600, 1.0f, pool2.data(), 1600, fc1w.data(), 1600, 0.0f, h.data(), 128, e1);
    kiln::sgemm(false, true, batch, 10, 128, 1.0f, h.data(), 128, fc2w.data(), 128, 0.0f, logits.data(), 10, e2);
    kiln::sgemm(true, false, 10, 128, batch, 1.0f, glogits.data(), 10, h.data(), 128, 0.0f, gfc2w.data(), 128);
    kiln::sgemm(false, false, batch, 128, 10, 1.0f, glogits.data(), 10, fc2w.data(), 128, 0.0f, gh.data(), 128);
    kiln::relu_backward(h.data(), gh.data(), gh.data(), gh.size());
    kiln::sgemm(true, false, 128, 1600, batch, 1.0f, gh.data(), 128, pool2.data(), 1600, 0.0f, gfc1w.data(), 1600);
    kiln::sgemm(false, false, batch, 1600, 128, 1.0f, gh.data(), 128, fc1w.data(), 1600, 0.0f, gpool2.data(), 1600);
  }, budget);
  report("Linear layers forward + backward", fc, fc_flops, peak, threads);
  const Timing loss_sgd = measure([&] {
    kiln::softmax_cross_entropy(logits.data(), labels.data(), batch, 10, losses.data(), glogits.data(), 1.0f / batch);
    kiln::sgd_step(params.data(), grads.data(), velocity.data(), params.size(), sgd);
  }, budget);
  report("loss + SGD step", loss_sgd, 0, peak, threads);
  const double wall = f1.wall + f2.wall + b1.wall + b2.wall + pools.wall + relus.wall + fc.wall + loss_sgd.wall;
  const double cpu = f1.cpu + f2.cpu + b1.cpu + b2.cpu + pools.cpu + relus.cpu + fc.cpu + loss_sgd.cpu;
  std::printf("SeedCNN training step, native kernels only (no JS): %.3f ms wall = %.0f images/s; %.3f ms cpu = %.0f images/s "
              "if the %zu threads ran unhindered\n",
              wall * 1e3, batch / wall, cpu * 1e3, batch / (cpu / threads), threads);
  return 0;
}
