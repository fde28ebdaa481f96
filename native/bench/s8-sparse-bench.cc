// Sparse int8 (kiln/s8-sparse.h) vs our dense int8 kernels on SeedCNN's layers, one thread:
//   s8-sparse-bench [isa] [avxvnni]   (default: the active ISA; "avxvnni" forces the AVX-VNNI
//                                      kernels of both paths)
// conv2 as QLinearConv + ReLU + fused 2x2/2 max pool, batch 64: MNIST 32x13x13 -> 64 (3x3, out
// 11x11, pooled 5x5) and CIFAR 32x15x15 -> 64 (out 13x13, pooled 6x6). Dense = what the plan step
// runs: S8Conv2dPlan over only the conv rows the pool reads (one image at a time, as the step does
// for a cropped convolution), then the uint8 max pool. fc1 = QLinearGemm 1600 -> 128 + ReLU at
// batch 1 and 64, dense = s8gemm_requantize. Weights random, with the given fraction zeroed as
// whole 1x4 blocks (4 input channels at one kernel position) or as single weights
// (unstructured). Times: dense and sparse run alternately, best of N each in thread CPU time;
// "x dense" = dense / sparse from the same run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/conv.h"
#include "kiln/s8-conv.h"
#include "kiln/s8-gemm.h"
#include "kiln/s8-sparse.h"
#include "kiln/thread-pool.h"

#include "bench-common.h"

namespace {

uint64_t g_state = 42;
uint64_t next() {
  g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
  return g_state >> 11;
}
double rnd() { return static_cast<double>(next()) / 9007199254740992.0; }

// Best thread-CPU seconds of a and b, run alternately, about budget_s in all (at least 7 each).
template <typename A, typename B>
void interleaved(A&& a, B&& b, double budget_s, double* ta, double* tb) {
  a();
  b();
  *ta = *tb = 1e30;
  double spent = 0;
  for (int r = 0; (spent < budget_s || r < 7) && r < 5000; ++r) {
    double t0 = kiln_bench::thread_cpu_seconds();
    a();
    double t1 = kiln_bench::thread_cpu_seconds();
    b();
    double t2 = kiln_bench::thread_cpu_seconds();
    *ta = std::min(*ta, t1 - t0);
    *tb = std::min(*tb, t2 - t1);
    spent += t2 - t0;
  }
}

// OIHW weights (GEMM: taps = 1) with `fraction` zeroed in 1x4 blocks of the reduction order, or
// unstructured; the rest non-zero.
std::vector<int8_t> weights(size_t rows, size_t c, size_t taps, double fraction, bool blocks) {
  std::vector<int8_t> w(rows * c * taps);
  for (int8_t& v : w) {
    v = static_cast<int8_t>(next() >> 40);
    if (v == 0) v = 1;
  }
  for (size_t r = 0; r < rows; ++r) {
    for (size_t t = 0; t < taps; ++t) {
      for (size_t c0 = 0; c0 < c; c0 += blocks ? 4 : 1) {
        if (rnd() >= fraction) continue;
        for (size_t ci = c0; ci < std::min(c, c0 + (blocks ? 4 : 1)); ++ci) w[(r * c + ci) * taps + t] = 0;
      }
    }
  }
  return w;
}

void conv_layer(const char* name, size_t hw, double fraction, bool blocks) {
  const size_t c = 32, o = 64, batch = 64;
  kiln::Conv2dGeometry g;
  g.in_channels = c, g.in_height = hw, g.in_width = hw, g.out_channels = o, g.kernel_h = 3, g.kernel_w = 3;
  g.out_height = g.out_width = hw - 2;
  const size_t ph = g.out_height / 2, pw = g.out_width / 2;
  std::vector<int8_t> w = weights(o, c, 9, fraction, blocks);
  std::vector<int32_t> bias(o);
  for (int32_t& b : bias) b = static_cast<int32_t>(next() % 20001) - 10000;
  std::vector<float> ws(o);
  for (float& s : ws) s = static_cast<float>(0.5 + rnd()) * 1e-3f;
  kiln::S8ConvQuant q;
  q.x_zero_point = 20;
  q.w_scale = ws.data();
  q.w_scale_count = o;
  q.x_scale = 0.05f;
  q.y_scale = 0.02f;
  q.y_zero_point = 0;
  q.y_min = 0;
  std::vector<uint8_t> x(batch * hw * hw * c);
  for (uint8_t& v : x) v = static_cast<uint8_t>(next());
  // Dense, as the plan step: the conv over the 2 * ph rows the pool reads, image by image, then the pool.
  kiln::Conv2dGeometry crop = g;
  crop.out_height = 2 * ph;
  crop.in_height = 2 * ph + 2;
  kiln::S8Conv2dPlan dense(crop, w.data(), bias.data(), q, false);
  std::vector<uint8_t> dscratch(dense.scratch_bytes(1, 1) + 64), staged(batch * crop.out_plane() * o);
  std::vector<uint8_t> ydense(batch * ph * pw * o), ysparse(ydense.size());
  kiln::Pool2dGeometry pg;
  pg.in_height = crop.out_height, pg.in_width = crop.out_width, pg.out_height = ph, pg.out_width = pw;
  pg.kernel_h = pg.kernel_w = pg.stride_h = pg.stride_w = 2;
  kiln::S8SparseConv sparse(g, w.data(), bias.data(), q, true);
  std::vector<uint8_t> sscratch(sparse.scratch_bytes(batch, 1));
  const size_t in_image = hw * hw * c;
  auto run_dense = [&] {
    for (size_t b = 0; b < batch; ++b) {
      dense.run(x.data() + b * in_image, staged.data() + b * crop.out_plane() * o, 1, dscratch.data(), 1);
    }
    kiln::max_pool2d_u8_nhwc(pg, batch, o, staged.data(), ydense.data(), 1);
  };
  auto run_sparse = [&] { sparse.run(x.data(), ysparse.data(), batch, sscratch.data(), 1); };
  double td, ts;
  interleaved(run_dense, run_sparse, 0.4, &td, &ts);
  const bool same = ydense == ysparse;
  std::printf("%-14s %-12s %3.0f%%  blocks kept %5.1f%%  dense %8.1f us  sparse %8.1f us  x dense %5.2f%s\n", name,
              blocks ? "1x4" : "unstructured", 100 * fraction, 100 * (1 - sparse.packed().block_zero_fraction()), td * 1e6,
              ts * 1e6, td / ts, same ? "" : "  MISMATCH");
}

void fc_layer(size_t batch, double fraction, bool blocks) {
  const size_t k = 1600, n = 128;
  std::vector<int8_t> w = weights(n, k, 1, fraction, blocks);
  std::vector<int32_t> bias(n);
  for (int32_t& b : bias) b = static_cast<int32_t>(next() % 20001) - 10000;
  std::vector<float> scale(n);
  for (float& s : scale) s = static_cast<float>(0.5 + rnd()) * 1e-4f;
  std::vector<uint8_t> a(batch * k);
  for (uint8_t& v : a) v = static_cast<uint8_t>(next());
  kiln::PackedS8B packed(true, k, n, w.data(), k);
  kiln::S8Requantization rq;
  rq.scale = scale.data();
  rq.zero_point = 0;
  rq.min = 0;
  std::vector<uint8_t> yd(batch * n), ys(batch * n);
  kiln::S8SparseGemm sparse(k, n, w.data(), true, bias.data(), scale.data(), 20, false, 0, 0, 255);
  std::vector<uint8_t> scratch(sparse.scratch_bytes(batch, 1) + 1);
  auto run_dense = [&] { kiln::s8gemm_requantize(batch, a.data(), k, 20, packed, bias.data(), rq, yd.data(), n, 1); };
  auto run_sparse = [&] { sparse.run(a.data(), ys.data(), batch, scratch.data(), 1); };
  double td, ts;
  interleaved(run_dense, run_sparse, 0.2, &td, &ts);
  char name[32];
  std::snprintf(name, sizeof name, "fc1 batch %zu", batch);
  std::printf("%-14s %-12s %3.0f%%  blocks kept %5.1f%%  dense %8.1f us  sparse %8.1f us  x dense %5.2f%s\n", name,
              blocks ? "1x4" : "unstructured", 100 * fraction, 100 * (1 - sparse.packed().block_zero_fraction()), td * 1e6,
              ts * 1e6, td / ts, yd == ys ? "" : "  MISMATCH");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && !kiln_bench::select_isa(argv[1])) return 2;
  if (argc > 2 && std::strcmp(argv[2], "avxvnni") == 0 && !kiln::set_s8_gemm_force_avxvnni(true)) {
    std::fprintf(stderr, "no AVX-VNNI on this CPU\n");
    return 2;
  }
  kiln::set_num_threads(1);
  std::printf("ISA %s, int8 GEMM kernels %s, 1 thread\n", kiln::isa_name(kiln::active_isa()), kiln::s8_gemm_kernel_name());
  for (bool blocks : {true, false}) {
    for (double f : {0.5, 0.7, 0.8, 0.9, 0.95}) conv_layer("mnist conv2", 13, f, blocks);
    for (double f : {0.5, 0.7, 0.8, 0.9, 0.95}) conv_layer("cifar conv2", 15, f, blocks);
    for (size_t batch : {size_t{1}, size_t{64}}) {
      for (double f : {0.5, 0.7, 0.8, 0.9, 0.95}) fc_layer(batch, f, blocks);
    }
  }
  return 0;
}
