// Sparse fp32 SpMM vs our dense fp32 GEMM on the same X, one thread, on SeedCNN's layers:
//   sparse-bench [isa]     (default: the active ISA)
// Y[M x N] = W[M x K] * X[K x N]: conv2 as a GEMM after im2col (M = 64 outputs, K = 32 * 3 * 3,
// N = output pixels per image x batch 64; MNIST 11 x 11, CIFAR 13 x 13) and fc1 (M = 128 outputs,
// K = flattened features, N = batch 64, X = the input transposed). Weights: random, whole blocks
// of the pattern zeroed at the given sparsity. Dense: kiln::sgemm(W, X) with max_threads 1 (the
// same weights, dense). Times: the fastest of repeated calls in thread CPU time (leaves out time
// slices lost to other processes on a shared machine). "x dense" = dense sgemm time / sparse
// time. For the convolutions the whole dense Conv2dPlan (batch 64, from the NCHW input; direct
// kernel on AVX-512) is timed too, for the ratio against our best dense convolution; the sparse
// time there leaves out building X (im2col).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "kiln/conv.h"
#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/f32-gemm.h"
#include "kiln/sparse.h"

#include "bench-common.h"

namespace {

template <typename Fn>
double best_seconds(Fn&& fn, double budget_s) {
  fn();
  double best = 1e30, spent = 0;
  int runs = 0;
  while ((spent < budget_s || runs < 5) && runs < 2000) {
    const double t0 = kiln_bench::thread_cpu_seconds();
    fn();
    const double dt = kiln_bench::thread_cpu_seconds() - t0;
    best = std::min(best, dt);
    spent += dt;
    ++runs;
  }
  return best;
}

uint64_t g_state = 42;
double rnd() {  // [0, 1)
  g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<double>(g_state >> 11) / 9007199254740992.0;
}

struct Layer {
  const char* name;
  size_t m, k, n;
  size_t in_hw = 0;  // conv2's input height = width (0: fc1); the dense conv runs 32 -> 64 channels, 3x3, batch n / out plane
};

}  // namespace

int main(int argc, char** argv) {
  if (!kiln_bench::select_isa(argc > 1 ? argv[1] : nullptr)) return 2;
  std::printf("sparse-bench: ISA %s, 1 thread, best thread-CPU time\n", kiln::isa_name(kiln::active_isa()));
  const Layer layers[] = {{"mnist conv2", 64, 288, 121 * 64, 13},
                          {"cifar conv2", 64, 288, 169 * 64, 15},
                          {"mnist conv2 b4", 64, 288, 121 * 4, 13},
                          {"mnist fc1", 128, 1600, 64},
                          {"cifar fc1", 128, 2304, 64}};
  const float sparsities[] = {0.5f, 0.7f, 0.8f, 0.9f, 0.95f};
  const kiln::SparsePattern patterns[] = {kiln::SparsePattern::kUnstructured, kiln::SparsePattern::kBlock4x1,
                                          kiln::SparsePattern::kBlock8x1, kiln::SparsePattern::kBlock1x4};
  for (const Layer& L : layers) {
    std::vector<float> x(L.k * L.n), y(L.m * L.n), bias(L.m);
    for (auto& v : x) v = static_cast<float>(rnd() * 2 - 1);
    for (auto& v : bias) v = static_cast<float>(rnd() - 0.5);
    std::vector<float> dense_w(L.m * L.k);
    for (auto& v : dense_w) v = static_cast<float>(rnd() * 2 - 1);
    kiln::GemmEpilogue ep;
    ep.bias = bias.data();
    ep.bias_mode = kiln::BiasMode::kPerRow;
    ep.relu = true;
    const double dense_s = best_seconds(
        [&] { kiln::sgemm(false, false, L.m, L.n, L.k, 1.0f, dense_w.data(), L.k, x.data(), L.n, 0.0f, y.data(), L.n, ep, 1); },
        0.3);
    const double flops = 2.0 * L.m * L.k * L.n;
    std::printf("\n%s: M=%zu K=%zu N=%zu  dense sgemm %.3f ms (%.1f GFLOP/s)", L.name, L.m, L.k, L.n, dense_s * 1e3,
                flops / dense_s * 1e-9);
    if (L.in_hw) {
      // The whole dense convolution (our best path: direct on AVX-512, im2col + GEMM below it),
      // from NCHW input; the sparse figures below start from X = im2col(input), already built.
      kiln::Conv2dGeometry g;
      g.in_channels = 32;
      g.in_height = g.in_width = L.in_hw;
      g.out_channels = 64;
      g.out_height = g.out_width = L.in_hw - 2;
      g.kernel_h = g.kernel_w = 3;
      const size_t batch = L.n / g.out_plane();
      const kiln::Conv2dPlan plan(g, dense_w.data(), bias.data(), true);
      std::vector<float> input(batch * 32 * g.in_plane()), out(batch * 64 * g.out_plane()), scratch(plan.scratch_floats(batch) + 1);
      for (auto& v : input) v = static_cast<float>(rnd() * 2 - 1);
      const double conv_s = best_seconds([&] { plan.run(input.data(), out.data(), batch, scratch.data(), 1); }, 0.3);
      std::printf(", dense conv plan %.3f ms (%.2fx the sgemm time)", conv_s * 1e3, conv_s / dense_s);
    }
    std::printf("\n");
    std::printf("  %-13s", "sparsity");
    for (float s : sparsities) std::printf("  %5.0f%%          ", s * 100);
    std::printf("\n");
    for (kiln::SparsePattern p : patterns) {
      std::printf("  %-13s", kiln::sparse_pattern_name(p));
      const size_t br = kiln::sparse_block_rows(p), bc = kiln::sparse_block_cols(p);
      for (float s : sparsities) {
        std::vector<float> w(dense_w);
        for (size_t r0 = 0; r0 < L.m; r0 += br)
          for (size_t c0 = 0; c0 < L.k; c0 += bc)
            if (rnd() < s)
              for (size_t r = r0; r < std::min(L.m, r0 + br); ++r)
                for (size_t c = c0; c < std::min(L.k, c0 + bc); ++c) w[r * L.k + c] = 0.0f;
        const kiln::PackedSparseF32 packed(L.m, L.k, w.data(), L.k, p);
        const double t = best_seconds(
            [&] { kiln::spmm_f32(packed, L.n, x.data(), L.n, y.data(), L.n, bias.data(), true, 1); }, 0.15);
        std::printf("  %7.3fms %5.2fx", t * 1e3, dense_s / t);
      }
      std::printf("\n");
    }
  }
  return 0;
}
