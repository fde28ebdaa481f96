// Sparse fp32 kernels vs our dense ones, one thread, on SeedCNN's layers:
//   sparse-bench [isa] [rounds] [nm]   (default: the active ISA, 15 rounds; "nm": the N:M rows only)
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
// N:M (kiln/sparse-nm.h), 2:4 and 1:4 over input channels at each kernel position, the same
// layers: conv2 as im2col + the N:M SpMM + a plain 2x2 max pool per image (the path a plan takes
// for N:M weights of a strided or pointwise convolution), against im2col + CSR SpMM of the same
// weights (same im2col and pool: the kernels alone differ), the direct sparse convolution
// (unstructured CSR, pool fused: what a plan runs for stride-1 N:M weights, this conv2 included),
// and the best dense path; fc1 (a plan's Gemm packs N:M) against CSR and sgemm.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <functional>
#include <vector>

#include "common/dispatch.h"
#include "conv/im2col.h"
#include "conv/winograd.h"
#include "kiln/conv.h"
#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/f32-gemm.h"
#include "kiln/sparse-conv.h"
#include "kiln/sparse-nm.h"
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

// Dense weights with each group of m input channels at one kernel position (OIHW: kh * kw apart)
// keeping n random ones: exactly n:m, as the pruner's N:M masks.
std::vector<float> nm_masked(const std::vector<float>& dense, size_t rows, size_t channels, size_t spatial, size_t n,
                             size_t m) {
  std::vector<float> w(dense.size(), 0.0f);
  const size_t k = channels * spatial;
  for (size_t r = 0; r < rows; ++r)
    for (size_t p = 0; p < spatial; ++p)
      for (size_t cg = 0; cg < channels / m; ++cg) {
        bool kept[8] = {};
        for (size_t done = 0; done < n;) {
          const size_t i = static_cast<size_t>(rnd() * static_cast<double>(m));
          if (kept[i]) continue;
          kept[i] = true;
          ++done;
          const size_t at = r * k + (cg * m + i) * spatial + p;
          w[at] = dense[at] != 0.0f ? dense[at] : 0.5f;
        }
      }
  return w;
}

const size_t kNmPatterns[][2] = {{2, 4}, {1, 4}};

void conv_layer_nm(const char* name, size_t in_hw, size_t batch, int rounds) {
  kiln::Conv2dGeometry g;
  g.in_channels = 32;
  g.in_height = g.in_width = in_hw;
  g.out_channels = 64;
  g.out_height = g.out_width = in_hw - 2;
  g.kernel_h = g.kernel_w = 3;
  kiln::ConvMaxPool pool;
  pool.kernel_h = pool.kernel_w = pool.stride_h = pool.stride_w = 2;
  pool.out_h = pool.out_w = g.out_height / 2;
  const size_t m = g.out_channels, k = g.patch(), plane = g.out_plane();
  std::vector<float> dense_w(m * k), bias(m);
  for (auto& v : dense_w) v = static_cast<float>(rnd() * 2 - 1);
  for (auto& v : bias) v = static_cast<float>(rnd() - 0.5);
  std::vector<float> input(batch * g.in_channels * g.in_plane()), out(batch * m * pool.out_h * pool.out_w);
  for (auto& v : input) v = static_cast<float>(rnd() * 2 - 1);
  const kiln::DispatchTable& t = kiln::dispatch();
  const kiln::Conv2dPlan plan(g, dense_w.data(), bias.data(), true);
  std::vector<float> direct_scratch(plan.max_pooled_scratch_floats(batch, pool) + plan.scratch_floats(batch) + 16);
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
  std::vector<float> cols(k * plane), conv_out(m * plane);
  // im2col + `product` (ReLU inside) + 2x2 max pool, image by image.
  auto staged = [&](const std::function<void()>& product) {
    const size_t in_image = g.in_channels * g.in_plane(), pooled = pool.out_h * pool.out_w;
    for (size_t i = 0; i < batch; ++i) {
      kiln::im2col(t.f32_conv, g, g.in_channels, input.data() + i * in_image, 0, plane, cols.data(), plane);
      product();
      float* o = out.data() + i * m * pooled;
      for (size_t c = 0; c < m; ++c)
        for (size_t y = 0; y < pool.out_h; ++y)
          for (size_t x = 0; x < pool.out_w; ++x) {
            const float* s = conv_out.data() + c * plane + 2 * y * g.out_width + 2 * x;
            o[c * pooled + y * pool.out_w + x] = std::max(std::max(s[0], s[1]), std::max(s[g.out_width], s[g.out_width + 1]));
          }
    }
  };
  std::printf("\n%s conv2 + ReLU + 2x2 max pool, N:M, batch %zu, us per image; x = that time / N:M time\n", name, batch);
  std::printf("  %-5s | %7s %7s %7s %7s %7s | %7s %7s %7s\n", "N:M", "nm", "csr-mm", "csr-dir", "direct", "wino",
              "x csrmm", "x csrdir", "x best");
  for (const auto& pat : kNmPatterns) {
    const std::vector<float> w = nm_masked(dense_w, m, g.in_channels, 9, pat[0], pat[1]);
    const kiln::PackedNmF32 nm(m, k, 9, w.data(), k, pat[0], pat[1]);
    const kiln::PackedSparseF32 csr(m, k, w.data(), k, kiln::SparsePattern::kUnstructured);
    const kiln::SparseConvF32 csr_direct(g, w.data(), bias.data(), true, kiln::SparsePattern::kUnstructured);
    std::vector<float> scratch(csr_direct.scratch_floats(batch, 1, &pool) + 16);
    const std::vector<double> best = interleaved_best(
        {[&] { staged([&] { kiln::spmm_nm_f32(nm, plane, cols.data(), plane, conv_out.data(), plane, bias.data(), true, 1); }); },
         [&] { staged([&] { kiln::spmm_f32(csr, plane, cols.data(), plane, conv_out.data(), plane, bias.data(), true, 1); }); },
         [&] { csr_direct.run(input.data(), out.data(), batch, &pool, scratch.data(), 1); }, direct, winograd},
        rounds);
    const double per = 1e6 / static_cast<double>(batch);
    const double dense_best = winograd ? std::min(best[3], best[4]) : best[3];
    std::printf("  %zu:%zu   | %7.2f %7.2f %7.2f %7.2f %7.2f | %7.2f %7.2f %7.2f\n", pat[0], pat[1], best[0] * per,
                best[1] * per, best[2] * per, best[3] * per, best[4] * per, best[1] / best[0], best[2] / best[0],
                dense_best / best[0]);
    std::fflush(stdout);
  }
}

void fc_layer_nm(const char* name, size_t in_features, size_t batch, int rounds) {
  const size_t m = 128, k = in_features, n = batch;
  std::vector<float> dense_w(m * k), bias(m), x(k * n), y(m * n);
  for (auto& v : dense_w) v = static_cast<float>(rnd() * 2 - 1);
  for (auto& v : bias) v = static_cast<float>(rnd() - 0.5);
  for (auto& v : x) v = static_cast<float>(rnd() * 2 - 1);
  kiln::GemmEpilogue ep;
  ep.bias = bias.data();
  ep.bias_mode = kiln::BiasMode::kPerRow;
  ep.relu = true;
  std::printf("\n%s: Linear %zu -> %zu + ReLU, N:M, batch %zu, us per call; x = that time / N:M time\n", name, k, m, n);
  std::printf("  %-5s | %7s %7s %7s | %7s %7s\n", "N:M", "nm", "csr", "sgemm", "x csr", "x dense");
  for (const auto& pat : kNmPatterns) {
    const std::vector<float> w = nm_masked(dense_w, m, k, 1, pat[0], pat[1]);
    const kiln::PackedNmF32 nm(m, k, 1, w.data(), k, pat[0], pat[1]);
    const kiln::PackedSparseF32 csr(m, k, w.data(), k, kiln::SparsePattern::kUnstructured);
    const std::vector<double> best = interleaved_best(
        {[&] { kiln::spmm_nm_f32(nm, n, x.data(), n, y.data(), n, bias.data(), true, 1); },
         [&] { kiln::spmm_f32(csr, n, x.data(), n, y.data(), n, bias.data(), true, 1); },
         [&] { kiln::sgemm(false, false, m, n, k, 1.0f, dense_w.data(), k, x.data(), n, 0.0f, y.data(), n, ep, 1); }},
        rounds);
    std::printf("  %zu:%zu   | %7.1f %7.1f %7.1f | %7.2f %7.2f\n", pat[0], pat[1], best[0] * 1e6, best[1] * 1e6,
                best[2] * 1e6, best[1] / best[0], best[2] / best[0]);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!kiln_bench::select_isa(argc > 1 ? argv[1] : nullptr)) return 2;
  const int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 15;
  std::printf("sparse-bench: ISA %s, 1 thread, best of %d interleaved rounds in thread CPU time\n",
              kiln::isa_name(kiln::active_isa()), rounds);
  const bool nm_only = argc > 3 && std::strcmp(argv[3], "nm") == 0;
  if (!nm_only) {
    conv_layer("SeedCNN MNIST", 13, 64, rounds);
    conv_layer("SeedCNN CIFAR", 15, 64, rounds);
    fc_layer("SeedCNN MNIST fc1", 1600, 64, rounds);
    fc_layer("SeedCNN CIFAR fc1", 2304, 64, rounds);
  }
  conv_layer_nm("SeedCNN MNIST", 13, 64, rounds);
  fc_layer_nm("SeedCNN MNIST fc1", 1600, 64, rounds);
  return 0;
}
