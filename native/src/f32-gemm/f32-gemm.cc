// The fp32 GEMM driver: K blocking, packing, the tile loops and the split over threads.
//
// Loop nest of one task (a block of rows x a block of columns of C), BLIS-style but with the
// small A tile kept in L1 and the B block streamed from L2:
//   for each K block (kc deep, the same blocks for every task and thread count):
//     B block (kc x columns of the task) packed once into panels of 16 columns  -> L2
//       (or read in place from a row-major B, or from a PackedB)
//     for each MR-row tile of A: pack its 6-row panels (kc x MR)                -> L1
//       for each NR-wide column tile: micro-kernel (C tile read/written once per K block)
// Sweeping A rows under an L1-resident B tile instead (B columns outside) measured a few points
// faster on some standalone products (M=3136 K=96 N=384: 69% of peak vs 58%) and slower on others
// (M=49 K=768 N=3072: 57% vs 62%), equal on ResNet-50 and ConvNeXt, and far slower on thin
// convolutions over large planes (MobileNetV2's 1x1 16->96 on 112x112: about 3x), whose C rows it
// writes as many short strided pieces: this order stays.
// An output element is always summed over the same K blocks in the same order by one thread, so
// results do not depend on how the work is split.
#include <algorithm>

#include "common/dispatch.h"
#include "common/threads.h"
#include "f32-gemm/f32-gemm-pack.h"
#include "f32-gemm/f32-gemm-ukernel.h"
#include "kiln/f32-gemm.h"
#include "kiln/thread-pool.h"

namespace kiln {
namespace {

constexpr size_t kMr = kF32GemmMr;
constexpr size_t kPanelN = kF32GemmPanelN;

// Depth of a K block: a 12 x kc A tile (18 KiB at 384) stays in the 48 KiB L1.
constexpr size_t kKcMax = 384;
// Bytes of a packed B block (kc x nc): about half of the 1 MiB L2, the rest for C and A.
constexpr size_t kBBlockBytes = 512 * 1024;
// Each thread gets at least this many multiply-adds (~10 us of work): waking a helper costs
// 8 us at best on this 2-core VM (tens of us when the other core is busy), so smaller products
// stay on the calling thread.
constexpr size_t kMinMacsPerThread = size_t(1) << 21;
constexpr size_t kGemvSplitBytes = size_t(256) << 10;

size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }
size_t round_up(size_t a, size_t b) { return div_up(a, b) * b; }

// K is cut into blocks of equal depth (the last one may be shorter); depends on K only.
size_t k_block_depth(size_t k) {
  const size_t blocks = div_up(k, kKcMax);
  return div_up(k, blocks);
}

// Per-thread packing buffers, kept between calls so small products do not pay for allocation.
AlignedFloats& scratch_a() {
  thread_local AlignedFloats buffer;
  return buffer;
}
AlignedFloats& scratch_b() {
  thread_local AlignedFloats buffer;
  return buffer;
}
float* reserve(AlignedFloats& buffer, size_t floats) {
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer.data();
}

enum class BSource { kPackPerCall, kInPlace, kPrepacked };

// The factor of C's old content in C = alpha * AB + beta * C: the caller's beta, plus one where the
// epilogue accumulates.
float c_scale(float beta, const GemmEpilogue& ep) { return ep.accumulate ? beta + 1.0f : beta; }

struct Problem {
  size_t m = 0, n = 0, k = 0;
  // A: raw (trans_a, a, lda) or prepacked.
  bool trans_a = false;
  const float* a = nullptr;
  size_t lda = 0;
  const PackedA* packed_a = nullptr;
  // B: raw (trans_b, b, ldb) packed per call or read in place, or prepacked.
  BSource b_source = BSource::kPackPerCall;
  bool trans_b = false;
  const float* b = nullptr;
  size_t ldb = 0;
  const PackedB* packed_b = nullptr;
  float alpha = 1.0f, beta = 0.0f;
  float* c = nullptr;
  size_t ldc = 0;
  GemmEpilogue epilogue;
};

// Computes C[m0:m1, n0:n1]. m0 is a multiple of kern.mr and n0 of kPanelN (prepacked panels).
void run_block(const Problem& pr, const F32GemmKernels& kern, size_t m0, size_t m1, size_t n0,
               size_t n1) {
  const size_t kc_max = k_block_depth(pr.k);
  const size_t nc = n1 - n0;
  float* a_buf = pr.packed_a ? nullptr : reserve(scratch_a(), kc_max * kern.mr);
  float* b_buf = pr.b_source == BSource::kPackPerCall
                     ? reserve(scratch_b(), kc_max * round_up(nc, kPanelN))
                     : nullptr;
  const GemmEpilogue& ep = pr.epilogue;

  for (size_t pc = 0; pc < pr.k; pc += kc_max) {
    const size_t kc = std::min(kc_max, pr.k - pc);
    const bool first = pc == 0;
    const bool last = pc + kc == pr.k;

    F32GemmTile tile;
    tile.k = kc;
    tile.ldc = pr.ldc;
    tile.alpha = pr.alpha;
    tile.load_c = !first || pr.beta != 0.0f;
    tile.beta = first ? pr.beta : 1.0f;
    tile.relu = last && ep.relu;
    tile.clamp = last && ep.clamp;
    tile.clamp_lo = ep.clamp_lo;
    tile.clamp_hi = ep.clamp_hi;

    // Where B(pc + p, n0 + j) lives for this K block.
    const float* b_base = nullptr;
    switch (pr.b_source) {
      case BSource::kPackPerCall:
        pack_b_block(pr.trans_b, pr.b, pr.ldb, pc, kc, n0, nc, b_buf);
        b_base = b_buf;
        tile.b_k_stride = kPanelN;
        tile.b_panel_stride = kc * kPanelN;
        tile.b_padded = true;
        break;
      case BSource::kInPlace:
        b_base = pr.b + pc * pr.ldb + n0;
        tile.b_k_stride = pr.ldb;
        tile.b_panel_stride = kPanelN;
        tile.b_padded = false;
        break;
      case BSource::kPrepacked:
        b_base = pr.packed_b->data() + (n0 / kPanelN) * pr.k * kPanelN + pc * kPanelN;
        tile.b_k_stride = kPanelN;
        tile.b_panel_stride = pr.k * kPanelN;
        tile.b_padded = true;
        break;
    }

    for (size_t i = m0; i < m1; i += kern.mr) {
      tile.mr = std::min(kern.mr, m1 - i);
      if (pr.packed_a) {
        tile.a = pr.packed_a->data() + (i / kMr) * pr.k * kMr + pc * kMr;
        tile.a_panel_stride = pr.k * kMr;
      } else {
        for (size_t q = 0; q * kMr < tile.mr; ++q) {
          pack_a_panel(pr.trans_a, pr.a, pr.lda, i + q * kMr, std::min(kMr, tile.mr - q * kMr), pc, kc, a_buf + q * kc * kMr);
        }
        tile.a = a_buf;
        tile.a_panel_stride = kc * kMr;
      }
      tile.row_bias = last && ep.bias_mode == BiasMode::kPerRow ? ep.bias + i : nullptr;
      for (size_t j = n0; j < n1; j += kern.nr) {
        tile.nr = std::min(kern.nr, n1 - j);
        tile.b = b_base + ((j - n0) / kPanelN) * tile.b_panel_stride;
        tile.c = pr.c + i * pr.ldc + j;
        tile.col_bias = last && ep.bias_mode == BiasMode::kPerColumn ? ep.bias + j : nullptr;
        kern.ukernel(tile);
      }
      // The rows this A tile just finished are in L1 (up to 12 x the column block).
      if (last && ep.post != nullptr) {
        for (size_t r = i; r < i + tile.mr; ++r) ep.post(ep.post_ctx, pr.c + r * pr.ldc + n0, n1 - n0);
      }
    }
  }
}

// C[:, n0:n1) = beta * C + epilogue, for K == 0 (no product to add).
void scale_only(const Problem& pr, size_t n0, size_t n1) {
  const GemmEpilogue& ep = pr.epilogue;
  for (size_t i = 0; i < pr.m; ++i) {
    float* c = pr.c + i * pr.ldc;
    for (size_t j = n0; j < n1; ++j) {
      float x = pr.beta == 0.0f ? 0.0f : pr.beta * c[j];
      if (ep.bias_mode == BiasMode::kPerRow) x += ep.bias[i];
      if (ep.bias_mode == BiasMode::kPerColumn) x += ep.bias[j];
      if (ep.relu && x < 0.0f) x = 0.0f;
      if (ep.clamp) x = clamp_value(x, ep.clamp_lo, ep.clamp_hi);
      c[j] = x;
    }
    if (ep.post != nullptr && n1 > n0) ep.post(ep.post_ctx, c + n0, n1 - n0);
  }
}

// Splits C into row chunks x column chunks (multiples of MR rows and NR columns), enough for
// `threads`, and runs them. Column chunks are capped so a packed B block fits the L2 budget.
void run(const Problem& pr, const F32GemmKernels& kern, size_t max_threads) {
  if (pr.m == 0 || pr.n == 0) return;
  if (pr.k == 0) {
    scale_only(pr, 0, pr.n);
    return;
  }
  // A Linear layer at batch 1: one row, no A packing, more FMA chains than a 1-row tile.
  const GemmEpilogue& ep = pr.epilogue;
  if (pr.m == 1 && pr.b_source == BSource::kPrepacked && !pr.trans_a && ep.bias_mode != BiasMode::kPerRow &&
      pr.alpha == 1.0f && pr.beta == 0.0f && kern.gemv_packed != nullptr) {
    const float* bias = ep.bias_mode == BiasMode::kPerColumn ? ep.bias : nullptr;
    const size_t kc = k_block_depth(pr.k);
    // A weight matrix larger than kGemvSplitBytes is read from memory or L3 at batch 1 (SeedCNN
    // fc1, 800 KiB); split by column panels, each thread reads its share of it into its own L2.
    const size_t panels = div_up(pr.n, kF32GemmPanelN);
    size_t parts = resolve_threads(max_threads);
    parts = pr.k * pr.n * sizeof(float) >= kGemvSplitBytes ? std::min(parts, panels) : 1;
    auto part = [&](size_t t) {
      const size_t p0 = panels * t / parts, p1 = panels * (t + 1) / parts;
      const size_t j0 = p0 * kF32GemmPanelN, j1 = std::min(pr.n, p1 * kF32GemmPanelN);
      if (j0 < j1) {
        kern.gemv_packed(pr.a, pr.k, kc, pr.packed_b->data() + p0 * pr.k * kF32GemmPanelN, j1 - j0, pr.c + j0,
                         bias != nullptr ? bias + j0 : nullptr, ep.relu);
      }
    };
    if (parts <= 1) {
      part(0);
    } else {
      parallel_for(parts, part, parts);
    }
    // The row kernels know ReLU only: the clamp of one output row is a pass over a few values.
    if (ep.clamp) {
      for (size_t j = 0; j < pr.n; ++j) pr.c[j] = clamp_value(pr.c[j], ep.clamp_lo, ep.clamp_hi);
    }
    if (ep.post != nullptr) ep.post(ep.post_ctx, pr.c, pr.n);
    return;
  }
  const size_t nr = kern.nr;

  size_t threads = resolve_threads(max_threads);
  const double macs = static_cast<double>(pr.m) * static_cast<double>(pr.n) * static_cast<double>(pr.k);
  const size_t threads_by_work = static_cast<size_t>(std::min(macs / kMinMacsPerThread, 1024.0));
  threads = std::max<size_t>(1, std::min(threads, threads_by_work));

  const size_t m_units = div_up(pr.m, kern.mr);
  const size_t n_units = div_up(pr.n, nr);
  const size_t kc = k_block_depth(pr.k);
  const size_t nc_units_max = std::max<size_t>(1, kBBlockBytes / (kc * sizeof(float) * nr));
  size_t n_chunks = div_up(n_units, nc_units_max);
  size_t m_chunks = 1;
  if (threads > 1) {
    // Each extra row chunk packs the B block again when B is packed per call (K x N floats);
    // each extra column chunk packs the A panels again (M x K). Rows split better otherwise:
    // every task then streams whole B rows (measured 1.9x vs 1.6x at 512^3 on 2 threads).
    // A prepacked B wider than A is tall (a late layer's weights over few pixels) is split by
    // columns too: each thread then reads its share of the weights, not all of them (ResNet-50's
    // 3x3 512->512 on 7x7, batch 1, 2 threads: 0.95 vs 1.08 ms).
    const bool b_packed_per_task = pr.b_source == BSource::kPackPerCall;
    const bool split_rows = m_units >= 2 && (pr.b_source == BSource::kInPlace || pr.n <= pr.m);
    if (split_rows) {
      // Without B packing, up to 3 tasks per thread of at least 8 row panels each: a helper
      // that wakes late (tens of microseconds on a busy VM) still finds work to take.
      const size_t wanted = b_packed_per_task ? threads : 3 * threads;
      m_chunks = std::min(m_units, std::max(threads, std::min(wanted, m_units / 8)));
    }
    if (m_chunks * n_chunks < threads) n_chunks = std::min(n_units, div_up(threads, m_chunks));
    // Whole rounds of tasks, so no thread idles at the end.
    if (m_chunks == 1 && n_chunks > threads && n_chunks % threads != 0) {
      n_chunks = std::min(n_units, round_up(n_chunks, threads));
    }
  }

  auto task = [&](size_t t) {
    const size_t mi = t / n_chunks, ni = t % n_chunks;
    const size_t m0 = std::min(pr.m, (m_units * mi / m_chunks) * kern.mr);
    const size_t m1 = std::min(pr.m, (m_units * (mi + 1) / m_chunks) * kern.mr);
    const size_t n0 = std::min(pr.n, (n_units * ni / n_chunks) * nr);
    const size_t n1 = std::min(pr.n, (n_units * (ni + 1) / n_chunks) * nr);
    if (m0 < m1 && n0 < n1) run_block(pr, kern, m0, m1, n0, n1);
  };
  const size_t tasks = m_chunks * n_chunks;
  if (threads <= 1 || tasks == 1) {
    for (size_t t = 0; t < tasks; ++t) task(t);
  } else {
    parallel_for(tasks, task, threads);
  }
}

// Packing B costs one copy of each block; it pays for itself once a block serves many A tiles.
// Read in place, a column tile's kc rows are kc strided streams the hardware prefetcher does not
// follow, so the micro-kernel fetches each row's next column tile as it goes (f32-gemm-tile.h).
// Measured before that prefetch, AVX-512, 1 thread (% of peak or ms, in place / packed): B cold,
// cycling through 16 images as a convolution's planes come at batch 16: M=64 K=256 N=784 42 / 53%,
// 1x1 convolutions on 56x56 256->64 26.7 / 14.0 ms, 144->24 7.2 / 4.7 ms; B warm from the step that
// wrote it, as at batch 1: M=32 K=128 N=729 58 / 43%, M=128 K=288 N=368 (im2col columns) 64 / 67%.
// With it, on the 1x1 convolutions of whole models at batch 16 (cold; per-layer minimum of two
// runs each, in place / packed): 24 output channels 0.47-0.49, 40: 0.68-0.82, 64: 0.74 (ResNet-50)
// to 1.00, 80-128: 0.83-0.94, 144-256: 0.97-1.01, 480-2048: 0.99-1.03; all of ResNet-50's 1x1
// layers 0.95, MobileNetV3-Large's 0.91, EfficientNet-B0's 0.93. So a cold B is read in place up to
// 256 rows. A warm one too, since that fetch goes into L2 (f32-gemm-tile.h): im2col columns at 128
// and 192 rows (3x3 convolutions, 1 thread, AVX-512, Xeon VM, packed -> in place, batch 16 / 1)
// ran 1-15% faster (stride 2 64->128 on 56x56 105 -> 116-123 GFLOP/s; ResNet-50's 128->128, stride 2,
// 34.6 -> 31.8 ms a batch of 16), the 1x1 1024->256 on 14x14 at batch 1 even, and only one shape at
// 256 rows lost (32->256 on 19x19, K = 288: 150 -> 146 GFLOP/s) against stride 2 64->256's 108 ->
// 137. Shallow products (K <= 32) are within a few points either way. Where the caller cannot
// tell, one or two row tiles read in place, as at batch 1, and more rows pack.
bool read_b_in_place(bool trans_b, size_t m, size_t k, BHint b_hint) {
  if (trans_b) return false;
  if (k <= 32) return true;
  return b_hint == BHint::kUnknown ? m < 32 : m <= 256;
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, size_t m, size_t n, size_t k, float alpha, const float* a,
           size_t lda, const float* b, size_t ldb, float beta, float* c, size_t ldc,
           const GemmEpilogue& epilogue, size_t max_threads) {
  Problem pr;
  pr.m = m;
  pr.n = n;
  pr.k = k;
  pr.trans_a = trans_a;
  pr.a = a;
  pr.lda = lda;
  pr.trans_b = trans_b;
  pr.b = b;
  pr.ldb = ldb;
  pr.b_source = read_b_in_place(trans_b, m, k, BHint::kUnknown) ? BSource::kInPlace : BSource::kPackPerCall;
  pr.alpha = alpha;
  pr.beta = c_scale(beta, epilogue);
  pr.c = c;
  pr.ldc = ldc;
  pr.epilogue = epilogue;
  run(pr, dispatch().f32_gemm, max_threads);  // one table for the whole call
}

void sgemm_packed_a(const PackedA& a, size_t n, bool trans_b, const float* b, size_t ldb, float* c,
                    size_t ldc, const GemmEpilogue& epilogue, size_t max_threads) {
  sgemm_packed_a(dispatch().f32_gemm, a, n, trans_b, b, ldb, c, ldc, epilogue, max_threads);
}

void sgemm_packed_a(const F32GemmKernels& kern, const PackedA& a, size_t n, bool trans_b, const float* b,
                    size_t ldb, float* c, size_t ldc, const GemmEpilogue& epilogue, size_t max_threads, BHint b_hint) {
  Problem pr;
  pr.m = a.rows();
  pr.n = n;
  pr.k = a.depth();
  pr.packed_a = &a;
  pr.trans_b = trans_b;
  pr.b = b;
  pr.ldb = ldb;
  pr.b_source = read_b_in_place(trans_b, pr.m, pr.k, b_hint) ? BSource::kInPlace : BSource::kPackPerCall;
  pr.c = c;
  pr.ldc = ldc;
  pr.epilogue = epilogue;
  pr.beta = c_scale(0.0f, epilogue);
  run(pr, kern, max_threads);
}

void sgemm_packed_b(size_t m, bool trans_a, const float* a, size_t lda, const PackedB& b, float* c,
                    size_t ldc, const GemmEpilogue& epilogue, size_t max_threads) {
  sgemm_packed_b(dispatch().f32_gemm, m, trans_a, a, lda, b, c, ldc, epilogue, max_threads);  // one table for the whole call
}

namespace {

Problem packed_b_problem(size_t m, bool trans_a, const float* a, size_t lda, const PackedB& b, float* c, size_t ldc,
                         const GemmEpilogue& epilogue) {
  Problem pr;
  pr.m = m;
  pr.n = b.cols();
  pr.k = b.depth();
  pr.trans_a = trans_a;
  pr.a = a;
  pr.lda = lda;
  pr.packed_b = &b;
  pr.b_source = BSource::kPrepacked;
  pr.c = c;
  pr.ldc = ldc;
  pr.epilogue = epilogue;
  pr.beta = c_scale(0.0f, epilogue);
  return pr;
}

}  // namespace

void sgemm_packed_b(const F32GemmKernels& kern, size_t m, bool trans_a, const float* a, size_t lda, const PackedB& b,
                    float* c, size_t ldc, const GemmEpilogue& epilogue, size_t max_threads) {
  run(packed_b_problem(m, trans_a, a, lda, b, c, ldc, epilogue), kern, max_threads);
}

void sgemm_packed_b_columns(const F32GemmKernels& kern, size_t m, bool trans_a, const float* a, size_t lda,
                            const PackedB& b, size_t n0, size_t n1, float* c, size_t ldc, const GemmEpilogue& epilogue) {
  const Problem pr = packed_b_problem(m, trans_a, a, lda, b, c, ldc, epilogue);
  n1 = std::min(n1, pr.n);
  if (m == 0 || n0 >= n1) return;
  if (pr.k == 0) {
    scale_only(pr, n0, n1);
    return;
  }
  // Column blocks as run() cuts them, so a block of B stays within the L2 budget.
  const size_t chunk = std::max<size_t>(1, kBBlockBytes / (k_block_depth(pr.k) * sizeof(float) * kern.nr)) * kern.nr;
  for (size_t j = n0; j < n1; j += chunk) run_block(pr, kern, 0, m, j, std::min(n1, j + chunk));
}

PackedA::PackedA(bool trans, size_t m, size_t k, const float* a, size_t lda) : m_(m), k_(k) {
  const size_t panels = div_up(m, kMr);
  data_.resize(panels * k * kMr);
  for (size_t q = 0; q < panels; ++q) {
    const size_t i0 = q * kMr;
    pack_a_panel(trans, a, lda, i0, std::min(kMr, m - i0), 0, k, data_.data() + q * k * kMr);
  }
}

PackedB::PackedB(bool trans, size_t k, size_t n, const float* b, size_t ldb) : k_(k), n_(n) {
  data_.resize(div_up(n, kPanelN) * k * kPanelN);
  if (k != 0 && n != 0) pack_b_block(trans, b, ldb, 0, k, 0, n, data_.data());
}

}  // namespace kiln
