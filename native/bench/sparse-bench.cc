// Sparse fp32 kernels vs our dense ones, one thread, on SeedCNN's layers:
//   sparse-bench [isa] [rounds]     (default: the active ISA, 15 rounds)
// Convolutions (conv2 with its ReLU and 2x2 max pool, 32 -> 64 channels, 3x3, unpadded, batch 64:
// MNIST 13x13 input -> 11x11 -> 5x5, CIFAR 15x15 -> 13x13 -> 6x6):
//   sparse    the direct sparse convolution with the pool fused (kiln/sparse-conv.h)
//   direct    the dense direct kernel with the pool fused (Conv2dPlan::run_max_pooled; on AVX-512,
//             im2col + GEMM then the pool below it)
//   winograd  dense Winograd with the pool fused, tile by cost (AVX-512), as graphOptimizationLevel
//             'all' runs it
//   best      the faster of direct and winograd
// fc1 (Linear 1600 -> 128 / 2304 -> 128, batch 64): Y = W * X^T by spmm_f32 against kiln::sgemm.
// Weights: random, whole blocks of the pattern zeroed at the given sparsity. Every cell times its
// candidates in interleaved rounds (sparse, then each dense path, then again) and keeps each one's
// fastest round in thread CPU time: the shared machine's noise moves all of them together, and the
// ratios (dense time / sparse time, > 1 = sparse faster) come from the same rounds.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "common/dispatch.h"
#include "conv/winograd.h"
#include "kiln/conv.h"
#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/f32-gemm.h"
#include "kiln/sparse-conv.h"
#include "kiln/sparse.h"

#include "bench-common.h"

namespace {

uint64_t g_state = 42;
double rnd() {  // [0, 1)
  g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<double>(g_state >> 11) / 9007199254740992.0;
}

// Best thread-CPU seconds of each candidate over `rounds` interleaved rounds (after one warm-up
// call each). A null candidate gets 0.
std::vector<double> interleaved_best(const std::vector<std::function<void()>>& fns, int rounds) {
  std::vector<double> best(fns.size(), 1e30);
  for (const auto& fn : fns)
    if (fn) fn();
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < fns.size(); ++i) {
      if (!fns[i]) continue;
      const double t0 = kiln_bench::thread_cpu_seconds();
      fns[i]();
      best[i] = std::min(best[i], kiln_bench::thread_cpu_seconds() - t0);
    }
  }
  for (size_t i = 0; i < fns.size(); ++i)
    if (!fns[i]) best[i] = 0;
  return best;
}

// Weights with whole blocks (br rows x bc columns of the m x k matrix) zeroed with probability s.
std::vector<float> masked(const std::vector<float>& dense, size_t m, size_t k, kiln::SparsePattern p, float s) {
  const size_t br = kiln::sparse_block_rows(p), bc = kiln::sparse_block_cols(p);
  std::vector<float> w(dense);
  for (size_t r0 = 0; r0 < m; r0 += br)
    for (size_t c0 = 0; c0 < k; c0 += bc)
      if (rnd() < s)
        for (size_t r = r0; r < std::min(m, r0 + br); ++r)
          for (size_t c = c0; c < std::min(k, c0 + bc); ++c) w[r * k + c] = 0.0f;
  return w;
}

const float kSparsities[] = {0.5f, 0.7f, 0.8f, 0.9f, 0.95f};
const kiln::SparsePattern kPatterns[] = {kiln::SparsePattern::kUnstructured, kiln::SparsePattern::kBlock4x1,
                                         kiln::SparsePattern::kBlock8x1};

void conv_layer(const char* name, size_t in_hw, size_t batch, int rounds) {
  kiln::Conv2dGeometry g;
  g.in_channels = 32;
  g.in_height = g.in_width = in_hw;
  g.out_channels = 64;
  g.out_height = g.out_width = in_hw - 2;
  g.kernel_h = g.kernel_w = 3;
  kiln::ConvMaxPool pool;
  pool.kernel_h = pool.kernel_w = pool.stride_h = pool.stride_w = 2;
  pool.out_h = pool.out_w = g.out_height / 2;
  const size_t m = g.out_channels, k = g.patch();
  std::vector<float> dense_w(m * k), bias(m);
  for (auto& v : dense_w) v = static_cast<float>(rnd() * 2 - 1);
  for (auto& v : bias) v = static_cast<float>(rnd() - 0.5);
  std::vector<float> input(batch * g.in_channels * g.in_plane()), out(batch * m * pool.out_h * pool.out_w);
  for (auto& v : input) v = static_cast<float>(rnd() * 2 - 1);

  const kiln::DispatchTable& t = kiln::dispatch();
  // The dense paths run on the same (dense) weights: their time does not depend on the zeros.
  const kiln::Conv2dPlan plan(g, dense_w.data(), bias.data(), true);
  std::vector<float> direct_scratch(plan.max_pooled_scratch_floats(batch, pool) + plan.scratch_floats(batch) + 16);
  // Without a direct kernel (below AVX-512) run_max_pooled runs im2col + GEMM, then the pool.
  const std::function<void()> direct = [&] {
    plan.run_max_pooled(t, input.data(), out.data(), batch, pool, direct_scratch.data(), 1);
  };
  std::unique_ptr<kiln::WinogradConv> wino;
  std::vector<float> wino_scratch;
  std::function<void()> winograd;
  if (kiln::WinogradConv::available(t) && kiln::winograd_fits(g) && kiln::winograd_pool_fits(g, pool)) {
    wino = std::make_unique<kiln::WinogradConv>(g, dense_w.data(), bias.data(), kiln::winograd_tile_for(g, &pool));
    wino_scratch.resize(wino->scratch_floats(batch, 1, &pool) + 16);
    winograd = [&] {
      if (!wino->run(t, input.data(), out.data(), batch, &pool, true, wino_scratch.data(), 1)) std::abort();
    };
  }
  std::printf("\n%s conv2 + ReLU + 2x2 max pool, batch %zu: %zu x %zu -> %zu x %zu, us per image; "
              "x direct / x best = their time / sparse time\n",
              name, batch, in_hw, in_hw, g.out_height, g.out_width);
  std::printf("  %-13s", "zeros");
  for (float s : kSparsities) std::printf(" | %3.0f%%: sparse direct  wino  x dir x best", s * 100);
  std::printf("\n");
  for (kiln::SparsePattern p : kPatterns) {
    std::printf("  %-13s", kiln::sparse_pattern_name(p));
    for (float s : kSparsities) {
      const std::vector<float> w = masked(dense_w, m, k, p, s);
      const kiln::SparseConvF32 sparse(g, w.data(), bias.data(), true, p);
      std::vector<float> scratch(sparse.scratch_floats(batch, 1, &pool) + 16);
      const std::vector<double> best = interleaved_best(
          {[&] { sparse.run(input.data(), out.data(), batch, &pool, scratch.data(), 1); }, direct, winograd}, rounds);
      const double per = 1e6 / static_cast<double>(batch);
      const double dense_best = winograd ? std::min(best[1], best[2]) : best[1];
      if (winograd) {
        std::printf(" | %6.2f %6.2f %6.2f %5.2f %5.2f", best[0] * per, best[1] * per, best[2] * per, best[1] / best[0],
                    dense_best / best[0]);
      } else {
        std::printf(" | %6.2f %6.2f %6s %5.2f %5.2f", best[0] * per, best[1] * per, "n/a", best[1] / best[0],
                    dense_best / best[0]);
      }
      std::fflush(stdout);
    }
    std::printf("\n");
  }
}

void fc_layer(const char* name, size_t in_features, size_t batch, int rounds) {
  const size_t m = 128, k = in_features, n = batch;
  std::vector<float> dense_w(m * k), bias(m), x(k * n), y(m * n);
  for (auto& v : dense_w) v = static_cast<float>(rnd() * 2 - 1);
  for (auto& v : bias) v = static_cast<float>(rnd() - 0.5);
  for (auto& v : x) v = static_cast<float>(rnd() * 2 - 1);
  kiln::GemmEpilogue ep;
  ep.bias = bias.data();
  ep.bias_mode = kiln::BiasMode::kPerRow;
  ep.relu = true;
  std::printf("\n%s: Linear %zu -> %zu + ReLU, batch %zu, us per call; x dense = sgemm time / sparse time\n", name,
              k, m, n);
  std::printf("  %-13s", "zeros");
  for (float s : kSparsities) std::printf(" | %3.0f%%: sparse  sgemm x dense", s * 100);
  std::printf("\n");
  for (kiln::SparsePattern p : kPatterns) {
    std::printf("  %-13s", kiln::sparse_pattern_name(p));
    for (float s : kSparsities) {
      const std::vector<float> w = masked(dense_w, m, k, p, s);
      const kiln::PackedSparseF32 packed(m, k, w.data(), k, p);
      const std::vector<double> best = interleaved_best(
          {[&] { kiln::spmm_f32(packed, n, x.data(), n, y.data(), n, bias.data(), true, 1); },
           [&] { kiln::sgemm(false, false, m, n, k, 1.0f, dense_w.data(), k, x.data(), n, 0.0f, y.data(), n, ep, 1); }},
          rounds);
      std::printf(" | %6.1f %6.1f %5.2f", best[0] * 1e6, best[1] * 1e6, best[1] / best[0]);
      std::fflush(stdout);
    }
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!kiln_bench::select_isa(argc > 1 ? argv[1] : nullptr)) return 2;
  const int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 15;
  std::printf("sparse-bench: ISA %s, 1 thread, best of %d interleaved rounds in thread CPU time\n",
              kiln::isa_name(kiln::active_isa()), rounds);
  conv_layer("SeedCNN MNIST", 13, 64, rounds);
  conv_layer("SeedCNN CIFAR", 15, 64, rounds);
  fc_layer("SeedCNN MNIST fc1", 1600, 64, rounds);
  fc_layer("SeedCNN CIFAR fc1", 2304, 64, rounds);
  return 0;
}
