// The int8 GEMM driver: per-call epilogue vectors, A panel packing, the tile loops and the split
// over threads. No K blocking: a tile sums the whole depth in registers and applies the epilogue
// (requantize / dequantize) straight from them, so no int32 partial sum goes through memory.
// int8 panels are small (an A panel of 6 rows x K = 4608, the deepest 3x3 conv of a VGG, is
// 27 KiB, within L1), and B is prepacked, so the loop nest is:
//   for each block of columns whose packed B fits half of L2:
//     for each mr-row panel of A: pack it (L1)
//       for each nr-wide tile: micro-kernel over the whole depth
// Sums are exact integers, so results are the same for any split and any ISA.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/dispatch.h"
#include "common/threads.h"
#include "kiln/s8-gemm.h"
#include "kiln/thread-pool.h"
#include "quant/requantize.h"
#include "s8-gemm/s8-gemm-pack.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {
namespace {

// Bytes of packed B a task sweeps per row panel: about half of the 1 MiB L2.
constexpr size_t kBBlockBytes = 512 * 1024;
// Below this many multiply-adds a call stays on one thread: waking a helper costs more.
constexpr size_t kMinMacsPerThread = size_t(1) << 20;

size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }
size_t round_up(size_t a, size_t b) { return div_up(a, b) * b; }

std::atomic<bool> g_force_avxvnni{false};

struct Problem {
  size_t m = 0, n = 0, k = 0;
  const uint8_t* a = nullptr;
  size_t lda = 0;
  const S8IndirectA* indirect = nullptr;  // instead of a / lda
  const PackedS8B* b = nullptr;
  S8Output out = S8Output::kInt32;
  void* c = nullptr;
  size_t ldc = 0;
  // Per-column epilogue vectors, padded to a multiple of kS8MaxNr columns.
  const int32_t* offset = nullptr;
  const float* scale = nullptr;
  const float* bias = nullptr;
  float lo = 0.0f, hi = 0.0f;
  int32_t zero_point = 0;
};

// Per-thread A panel buffer, kept between calls so small products do not pay for allocation.
std::vector<int16_t, CacheAlignedAllocator<int16_t>>& scratch_a() {
  thread_local std::vector<int16_t, CacheAlignedAllocator<int16_t>> buffer;
  return buffer;
}

void* element(const Problem& pr, size_t i, size_t j) {
  switch (pr.out) {
    case S8Output::kInt32: return static_cast<int32_t*>(pr.c) + i * pr.ldc + j;
    case S8Output::kU8: return static_cast<uint8_t*>(pr.c) + i * pr.ldc + j;
    case S8Output::kF32: return static_cast<float*>(pr.c) + i * pr.ldc + j;
  }
  return nullptr;
}

// Computes C[m0:m1, n0:n1]; n0 is a multiple of the kernel's nr.
void run_block(const Problem& pr, const S8GemmKernels& kern, size_t m0, size_t m1, size_t n0,
               size_t n1) {
  const size_t groups = pr.b->padded_depth() / kS8KGroup;
  const size_t panel_elems = kern.mr * groups * kS8KGroup;
  auto& buffer = scratch_a();
  if (buffer.size() < panel_elems) buffer.resize(panel_elems);
  void* a_panel = buffer.data();

  S8GemmTile tile;
  tile.b_panel_stride = pr.b->padded_depth() * kS8PanelN;
  tile.groups = groups;
  tile.out = pr.out;
  tile.ldc = pr.ldc;
  tile.lo = pr.lo;
  tile.hi = pr.hi;
  tile.zero_point = pr.zero_point;
  // A byte kernel reads a row-major A whose K is a whole number of groups in place: every byte it
  // reads is inside A (groups * 4 == K), and packing would only copy it. An indirect A it reads
  // through the row pointers (only byte kernels are given one).
  const bool in_place = kern.a_layout == S8ALayout::kU8 && pr.k > 0 && pr.k % kS8KGroup == 0;
  tile.a_row_stride = in_place ? pr.lda : kS8KGroup;
  tile.a_group_stride = in_place ? kS8KGroup : kern.mr * kS8KGroup;
  if (pr.indirect) {
    tile.a_rows_stride = pr.m;
    tile.a_segment_groups = pr.indirect->segment_groups;
  }
  for (size_t i = m0; i < m1; i += kern.mr) {
    tile.mr = std::min(kern.mr, m1 - i);
    if (pr.indirect) {
      tile.a_rows = pr.indirect->rows + i;
    } else if (in_place) {
      tile.a = pr.a + i * pr.lda;
    } else if (kern.a_layout == S8ALayout::kU8) {
      pack_s8_a_u8(pr.a, pr.lda, i, tile.mr, kern.mr, pr.k, groups, static_cast<uint8_t*>(a_panel));
      tile.a = a_panel;
    } else {
      pack_s8_a_i16(pr.a, pr.lda, i, tile.mr, kern.mr, pr.k, groups, static_cast<int16_t*>(a_panel));
      tile.a = a_panel;
    }
    for (size_t j = n0; j < n1; j += kern.nr) {
      tile.nr = std::min(kern.nr, n1 - j);
      tile.b = pr.b->data() + (j / kS8PanelN) * tile.b_panel_stride + (j % kS8PanelN) * kS8KGroup;
      tile.offset = pr.offset + j;
      tile.scale = pr.scale ? pr.scale + j : nullptr;
      tile.bias = pr.bias ? pr.bias + j : nullptr;
      tile.c = element(pr, i, j);
      kern.ukernel(tile);
    }
  }
}

// Splits C into row chunks x column chunks (multiples of mr rows and nr columns), enough for the
// threads, with column chunks capped so the B they sweep stays in L2.
void run(const Problem& pr, const S8GemmKernels& kern, size_t max_threads) {
  if (pr.m == 0 || pr.n == 0) return;

  size_t threads = resolve_threads(max_threads);
  const double macs = static_cast<double>(pr.m) * static_cast<double>(pr.n) *
                      static_cast<double>(std::max<size_t>(pr.k, 1));
  threads = std::max<size_t>(1, std::min<double>(static_cast<double>(threads), macs / kMinMacsPerThread));

  const size_t m_units = div_up(pr.m, kern.mr);
  const size_t n_units = div_up(pr.n, kern.nr);
  const size_t unit_bytes = std::max<size_t>(pr.b->padded_depth(), 1) * kern.nr;
  const size_t nc_units_max = std::max<size_t>(1, kBBlockBytes / unit_bytes);
  size_t n_chunks = div_up(n_units, nc_units_max);
  size_t m_chunks = 1;
  if (threads > 1) {
    // Split rows first: every row chunk reuses the same B block, and A panels are packed per task.
    while (m_chunks * n_chunks < threads) {
      if (m_units / m_chunks >= 2) {
        ++m_chunks;
      } else if (n_units / n_chunks >= 2) {
        ++n_chunks;
      } else {
        break;
      }
    }
  }

  auto task = [&](size_t t) {
    const size_t mi = t / n_chunks, ni = t % n_chunks;
    const size_t m0 = std::min(pr.m, (m_units * mi / m_chunks) * kern.mr);
    const size_t m1 = std::min(pr.m, (m_units * (mi + 1) / m_chunks) * kern.mr);
    const size_t n0 = std::min(pr.n, (n_units * ni / n_chunks) * kern.nr);
    const size_t n1 = std::min(pr.n, (n_units * (ni + 1) / n_chunks) * kern.nr);
    if (m0 < m1 && n0 < n1) run_block(pr, kern, m0, m1, n0, n1);
  };
  const size_t tasks = m_chunks * n_chunks;
  if (threads <= 1 || tasks == 1) {
    for (size_t t = 0; t < tasks; ++t) task(t);
  } else {
    parallel_for(tasks, task, threads);
  }
}

// The per-call epilogue vectors, padded with zeros so kernels can load whole vectors.
struct Epilogue {
  std::vector<int32_t> offset;
  std::vector<float> scale, bias;
};

Problem make_problem(size_t m, const uint8_t* a, size_t lda, uint8_t za, const PackedS8B& b,
                     const int32_t* bias, Epilogue* ep) {
  const size_t n = b.cols();
  const size_t padded = round_up(std::max<size_t>(n, 1), kS8MaxNr);
  ep->offset.assign(padded, 0);
  const int32_t* sums = b.column_sums();
  for (size_t j = 0; j < n; ++j) ep->offset[j] = column_offset(bias ? bias[j] : 0, za, sums[j]);
  Problem pr;
  pr.m = m;
  pr.n = n;
  pr.k = b.depth();
  pr.a = a;
  pr.lda = lda;
  pr.b = &b;
  pr.offset = ep->offset.data();
  return pr;
}

const float* padded_copy(const float* src, size_t n, std::vector<float>* dst) {
  dst->assign(round_up(std::max<size_t>(n, 1), kS8MaxNr), 0.0f);
  if (src) std::memcpy(dst->data(), src, n * sizeof(float));
  return dst->data();
}

// The uint8 output stage: requantized into c (ldc elements per row).
void set_requantize(Problem* pr, const S8Requantization& rq, uint8_t* c, size_t ldc, Epilogue* ep) {
  pr->out = S8Output::kU8;
  pr->c = c;
  pr->ldc = ldc;
  pr->scale = padded_copy(rq.scale, pr->n, &ep->scale);
  pr->zero_point = rq.zero_point;
  pr->lo = static_cast<float>(static_cast<int32_t>(rq.min) - rq.zero_point);
  pr->hi = static_cast<float>(static_cast<int32_t>(rq.max) - rq.zero_point);
}

// The float output stage: dequantized into c.
void set_dequantize(Problem* pr, const S8Dequantization& dq, float* c, size_t ldc, Epilogue* ep) {
  pr->out = S8Output::kF32;
  pr->c = c;
  pr->ldc = ldc;
  pr->scale = padded_copy(dq.scale, pr->n, &ep->scale);
  pr->bias = padded_copy(dq.bias, pr->n, &ep->bias);
}

void check_indirect(const S8GemmKernels& kern, const S8IndirectA& a, const PackedS8B& b, const char* who) {
  if (kern.a_layout != S8ALayout::kU8 || b.depth() != a.segments * a.segment_groups * kS8KGroup) {
    throw std::invalid_argument(std::string(who) + ": a byte kernel and K = segments * segment_groups * 4 required");
  }
}

}  // namespace

void s8gemm(size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point, const PackedS8B& b,
            const int32_t* bias, int32_t* c, size_t ldc, size_t max_threads) {
  Epilogue ep;
  Problem pr = make_problem(m, a, lda, a_zero_point, b, bias, &ep);
  pr.out = S8Output::kInt32;
  pr.c = c;
  pr.ldc = ldc;
  run(pr, s8_gemm_active_kernels(), max_threads);  // one kernel family for the whole call
}

void s8gemm_requantize(size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point,
                       const PackedS8B& b, const int32_t* bias, const S8Requantization& rq,
                       uint8_t* c, size_t ldc, size_t max_threads) {
  s8gemm_requantize(s8_gemm_active_kernels(), m, a, lda, a_zero_point, b, bias, rq, c, ldc, max_threads);
}

void s8gemm_requantize(const S8GemmKernels& kern, size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point,
                       const PackedS8B& b, const int32_t* bias, const S8Requantization& rq, uint8_t* c, size_t ldc,
                       size_t max_threads) {
  Epilogue ep;
  Problem pr = make_problem(m, a, lda, a_zero_point, b, bias, &ep);
  set_requantize(&pr, rq, c, ldc, &ep);
  run(pr, kern, max_threads);
}

void s8gemm_dequantize(size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point,
                       const PackedS8B& b, const int32_t* bias, const S8Dequantization& dq,
                       float* c, size_t ldc, size_t max_threads) {
  s8gemm_dequantize(s8_gemm_active_kernels(), m, a, lda, a_zero_point, b, bias, dq, c, ldc, max_threads);
}

void s8gemm_dequantize(const S8GemmKernels& kern, size_t m, const uint8_t* a, size_t lda, uint8_t a_zero_point,
                       const PackedS8B& b, const int32_t* bias, const S8Dequantization& dq, float* c, size_t ldc,
                       size_t max_threads) {
  Epilogue ep;
  Problem pr = make_problem(m, a, lda, a_zero_point, b, bias, &ep);
  set_dequantize(&pr, dq, c, ldc, &ep);
  run(pr, kern, max_threads);
}

void s8gemm_requantize_indirect(const S8GemmKernels& kern, size_t m, const S8IndirectA& a, uint8_t a_zero_point,
                                const PackedS8B& b, const int32_t* bias, const S8Requantization& rq, uint8_t* c,
                                size_t ldc, size_t max_threads) {
  check_indirect(kern, a, b, "s8gemm_requantize_indirect");
  Epilogue ep;
  Problem pr = make_problem(m, nullptr, 0, a_zero_point, b, bias, &ep);
  pr.indirect = &a;
  set_requantize(&pr, rq, c, ldc, &ep);
  run(pr, kern, max_threads);
}

void s8gemm_dequantize_indirect(const S8GemmKernels& kern, size_t m, const S8IndirectA& a, uint8_t a_zero_point,
                                const PackedS8B& b, const int32_t* bias, const S8Dequantization& dq, float* c,
                                size_t ldc, size_t max_threads) {
  check_indirect(kern, a, b, "s8gemm_dequantize_indirect");
  Epilogue ep;
  Problem pr = make_problem(m, nullptr, 0, a_zero_point, b, bias, &ep);
  pr.indirect = &a;
  set_dequantize(&pr, dq, c, ldc, &ep);
  run(pr, kern, max_threads);
}

const S8GemmKernels& s8_gemm_active_kernels() { return s8_gemm_kernels(dispatch()); }

const S8GemmKernels& s8_gemm_kernels(const DispatchTable& table) {
  if (g_force_avxvnni.load(std::memory_order_relaxed) && table.s8_gemm_avxvnni.ukernel) {
    return table.s8_gemm_avxvnni;
  }
  return table.s8_gemm;
}

const char* s8_gemm_kernel_name() { return s8_gemm_active_kernels().name; }

bool set_s8_gemm_force_avxvnni(bool force) {
  if (force && !cpu_features().avxvnni) return false;
  g_force_avxvnni.store(force, std::memory_order_relaxed);
  return true;
}

}  // namespace kiln
