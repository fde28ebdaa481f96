// int8 GEMM against the naive oracle, bit for bit, on every kernel family this CPU has: each ISA
// level (scalar, avx2, avx512 = AVX-512BW, avx512vnni) and the AVX-VNNI kernels forced on.
//
// Every operand ends where an inaccessible page begins, so a read or write past the end crashes
// the test instead of passing silently. Row gaps (lda/ldc larger than needed) hold random bytes in
// A (read by mistake, they change the sum) and a sentinel in C (written by mistake, it shows).
// Outputs start as a sentinel (NaN for float, two different byte values over two runs for uint8),
// so an unwritten element fails. Exit code 1 on any failure.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/s8-gemm.h"
#include "kiln/thread-pool.h"
#include "quant/requantize.h"
#include "s8-gemm/s8-gemm-ukernel.h"

#include "check.h"
#include "s8-paths.h"
#include "test-util.h"

#if defined(__x86_64__)
#include "common/simd.h"
#endif

namespace {

using kiln_test::Rng;
using kiln_test::Guarded;

using kiln_test::check;
using kiln_test::g_failed;
using kiln_test::g_passed;



size_t extent(size_t rows, size_t cols, size_t ld) { return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols; }

using kiln_test::all_paths;
using kiln_test::Path;
using kiln_test::path_name;
using kiln_test::select;

struct Case {
  size_t m = 1, n = 1, k = 1;
  bool trans_b = false;
  uint8_t za = 0;
  bool bias = false;
  size_t pad_a = 0, pad_b = 0, pad_c = 0;
  size_t threads = 1;
  enum Values { kRandom, kExtremeLow, kExtremeHigh } values = kRandom;
};

std::string describe(const Case& c) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "kernel=%s m=%zu n=%zu k=%zu tB=%d za=%d bias=%d pads=%zu/%zu/%zu threads=%zu values=%d",
                kiln::s8_gemm_kernel_name(), c.m, c.n, c.k, c.trans_b, c.za, c.bias, c.pad_a, c.pad_b,
                c.pad_c, c.threads, static_cast<int>(c.values));
  return buf;
}

// The operands of one case, and the oracle's int32 result.
struct Operands {
  size_t lda, ldb, ldc;
  std::vector<uint8_t> a;
  std::vector<int8_t> b;
  std::vector<int32_t> bias;
  std::vector<int32_t> want;  // m x n, dense
  std::vector<float> scale, fbias;
};

Operands make_operands(const Case& cs, Rng& rng) {
  Operands op;
  op.lda = cs.k + cs.pad_a;
  op.ldb = (cs.trans_b ? cs.k : cs.n) + cs.pad_b;
  op.ldc = cs.n + cs.pad_c;
  op.a.resize(std::max<size_t>(1, extent(cs.m, cs.k, op.lda)));
  const size_t b_rows = cs.trans_b ? cs.n : cs.k;
  op.b.resize(std::max<size_t>(1, extent(b_rows, cs.trans_b ? cs.k : cs.n, op.ldb)));
  for (auto& v : op.a) v = cs.values == Case::kRandom ? static_cast<uint8_t>(rng.next()) : 255;
  for (auto& v : op.b) {
    v = cs.values == Case::kRandom ? static_cast<int8_t>(rng.next())
                                   : cs.values == Case::kExtremeLow ? int8_t(-128) : int8_t(127);
  }
  if (cs.bias) {
    op.bias.resize(cs.n);
    for (auto& v : op.bias) v = static_cast<int32_t>(rng.next() % 2000001) - 1000000;
  }
  op.want.resize(cs.m * cs.n);
  kiln::s8gemm_naive(cs.trans_b, cs.m, cs.n, cs.k, op.a.data(), op.lda, cs.za, op.b.data(), op.ldb,
                     cs.bias ? op.bias.data() : nullptr, op.want.data(), cs.n);
  op.scale.resize(cs.n);
  op.fbias.resize(cs.n);
  for (size_t j = 0; j < cs.n; ++j) {
    // Multipliers that map typical sums over most of [0, 255], and some that saturate.
    op.scale[j] = rng.uniform(0.5f, 2.0f) / static_cast<float>(std::max<size_t>(cs.k, 1) * 64);
    if (j % 7 == 3) op.scale[j] *= 64.0f;
    // Products far past int32 both ways (a SIMD float -> int conversion gives INT_MIN there).
    if (j % 11 == 5) op.scale[j] *= 1e30f;
    op.fbias[j] = rng.uniform(-3.0f, 3.0f);
  }
  return op;
}

template <typename T>
void copy_into(Guarded<T>& dst, const std::vector<T>& src) {
  std::memcpy(dst.data(), src.data(), dst.size() * sizeof(T));
}

// Runs the three output stages of one case on the active path and compares bit for bit.
void run_case(const Case& cs, uint64_t seed) {
  Rng rng(seed);
  Operands op = make_operands(cs, rng);
  const std::string what = describe(cs);

  Guarded<uint8_t> a(op.a.size());
  copy_into(a, op.a);
  Guarded<int8_t> b(op.b.size());
  copy_into(b, op.b);
  const kiln::PackedS8B packed(cs.trans_b, cs.k, cs.n, b.data(), op.ldb);
  Guarded<int32_t> bias(std::max<size_t>(1, op.bias.size()));
  if (cs.bias) copy_into(bias, op.bias);
  const int32_t* bias_p = cs.bias ? bias.data() : nullptr;
  const size_t c_len = std::max<size_t>(1, extent(cs.m, cs.n, op.ldc));

  // int32
  {
    const int32_t sentinel = -2023406815;  // 0x87654321
    Guarded<int32_t> c(c_len);
    for (size_t i = 0; i < c.size(); ++i) c[i] = sentinel;
    kiln::s8gemm(cs.m, a.data(), op.lda, cs.za, packed, bias_p, c.data(), op.ldc, cs.threads);
    bool ok = true;
    size_t bad = 0;
    for (size_t at = 0; at < extent(cs.m, cs.n, op.ldc) && ok; ++at) {
      const size_t i = at / op.ldc, j = at % op.ldc;
      const int32_t want = j < cs.n ? op.want[i * cs.n + j] : sentinel;
      if (c[at] != want) ok = false, bad = at;
    }
    check(ok, "int32 " + what + " first bad index " + std::to_string(bad));
  }

  // uint8 requantization, twice with different sentinels so an unwritten byte cannot pass.
  const uint8_t zo = static_cast<uint8_t>(rng.next());
  const uint8_t lo = static_cast<uint8_t>(rng.below(zo + 1u));  // lo <= zo: sometimes a fused ReLU
  const uint8_t hi = static_cast<uint8_t>(255 - rng.below(40));
  kiln::S8Requantization rq;
  Guarded<float> scale(std::max<size_t>(1, cs.n));
  copy_into(scale, op.scale);
  rq.scale = scale.data();
  rq.zero_point = zo;
  rq.min = cs.m % 2 ? zo : lo;
  rq.max = rq.min > hi ? rq.min : hi;
  const float qlo = static_cast<float>(static_cast<int>(rq.min) - zo);
  const float qhi = static_cast<float>(static_cast<int>(rq.max) - zo);
  for (uint8_t sentinel : {uint8_t(0x5A), uint8_t(0xA5)}) {
    Guarded<uint8_t> c(c_len);
    std::memset(c.data(), sentinel, c.size());
    kiln::s8gemm_requantize(cs.m, a.data(), op.lda, cs.za, packed, bias_p, rq, c.data(), op.ldc, cs.threads);
    bool ok = true;
    size_t bad = 0;
    for (size_t at = 0; at < extent(cs.m, cs.n, op.ldc) && ok; ++at) {
      const size_t i = at / op.ldc, j = at % op.ldc;
      const uint8_t want = j < cs.n ? kiln::requantize_u8(op.want[i * cs.n + j], op.scale[j], zo, qlo, qhi) : sentinel;
      if (c[at] != want) ok = false, bad = at;
    }
    check(ok, "u8 " + what + " first bad index " + std::to_string(bad));
  }

  // float dequantization, NaN sentinel; compared as bits.
  {
    Guarded<float> fbias(std::max<size_t>(1, cs.n));
    copy_into(fbias, op.fbias);
    kiln::S8Dequantization dq;
    dq.scale = scale.data();
    dq.bias = cs.m % 3 ? fbias.data() : nullptr;
    Guarded<float> c(c_len);
    for (size_t i = 0; i < c.size(); ++i) c[i] = std::numeric_limits<float>::quiet_NaN();
    kiln::s8gemm_dequantize(cs.m, a.data(), op.lda, cs.za, packed, bias_p, dq, c.data(), op.ldc, cs.threads);
    bool ok = true;
    size_t bad = 0;
    for (size_t at = 0; at < extent(cs.m, cs.n, op.ldc) && ok; ++at) {
      const size_t i = at / op.ldc, j = at % op.ldc;
      if (j >= cs.n) {
        if (!std::isnan(c[at])) ok = false, bad = at;
        continue;
      }
      const float want = kiln::dequantize_f32(op.want[i * cs.n + j], op.scale[j], dq.bias ? op.fbias[j] : 0.0f);
      if (std::memcmp(&want, &c[at], sizeof(float)) != 0) ok = false, bad = at;
    }
    check(ok, "f32 " + what + " first bad index " + std::to_string(bad));
  }
}

// The oracle itself, on a product small enough to write out by hand.
void test_oracle() {
  const uint8_t a[2 * 3] = {1, 2, 3, 255, 0, 10};
  const int8_t b[3 * 2] = {1, -1, 2, -128, 3, 127};
  const int32_t bias[2] = {100, -100};
  int32_t c[4];
  kiln::s8gemm_naive(false, 2, 2, 3, a, 3, 2, b, 2, bias, c, 2);
  // Row 0: (1-2)*1 + (2-2)*2 + (3-2)*3 + 100 = 102; (1-2)*-1 + 0 + (1)*127 - 100 = 28.
  // Row 1: 253*1 + (-2)*2 + 8*3 + 100 = 373; 253*-1 + (-2)*-128 + 8*127 - 100 = 919.
  check(c[0] == 102 && c[1] == 28 && c[2] == 373 && c[3] == 919, "oracle by hand");
}

// The epilogue specification on values whose answers are known: ties go to even.
void test_epilogue_spec() {
  check(kiln::requantize_u8(5, 0.5f, 0, -0.0f, 255.0f) == 2, "2.5 rounds to 2");
  check(kiln::requantize_u8(7, 0.5f, 0, -0.0f, 255.0f) == 4, "3.5 rounds to 4");
  check(kiln::requantize_u8(-5, 0.5f, 128, -128.0f, 127.0f) == 126, "-2.5 rounds to -2");
  check(kiln::requantize_u8(1 << 30, 1.0f, 10, -10.0f, 245.0f) == 255, "clamps high");
  check(kiln::requantize_u8(-(1 << 30), 1.0f, 10, 0.0f, 245.0f) == 10, "fused ReLU clamps at zo");
  check(kiln::dequantize_f32(3, 0.5f, 0.25f) == 1.75f, "dequantize");
}

// Shapes around every tile edge (1..MR+1 rows, 1..NR+1 columns for every family), odd and prime
// sizes, K not a multiple of 4, several hundred.
void test_shapes(const Path& path) {
  select(path);
  Rng rng(1234 + static_cast<int>(path.isa) * 7 + path.avxvnni);
  const size_t ms[] = {1, 2, 3, 5, 6, 7, 12, 13, 31, 97, 131, 300};
  const size_t ns[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 129, 257};
  const size_t ks[] = {0, 1, 2, 3, 4, 5, 7, 13, 64, 67, 211, 389};
  uint64_t seed = 1;
  for (size_t m : ms)
    for (size_t n : ns) {
      Case cs;
      cs.m = m;
      cs.n = n;
      cs.k = ks[rng.below(sizeof(ks) / sizeof(ks[0]))];
      if (m * n * cs.k > 3000000) cs.k = 67;
      cs.trans_b = rng.below(2);
      cs.za = static_cast<uint8_t>(rng.next());
      cs.bias = rng.below(2);
      cs.pad_a = rng.below(3) == 0 ? rng.below(9) : 0;
      cs.pad_b = rng.below(3) == 0 ? rng.below(9) : 0;
      cs.pad_c = rng.below(3) == 0 ? rng.below(9) : 0;
      cs.threads = 1 + rng.below(2);
      run_case(cs, seed++);
    }
  // Every K from 0 to 20 on a shape with full and partial tiles.
  for (size_t k = 0; k <= 20; ++k) {
    Case cs;
    cs.m = 7;
    cs.n = 70;
    cs.k = k;
    cs.za = static_cast<uint8_t>(k * 13);
    cs.bias = k % 2;
    run_case(cs, seed++);
  }
  // Products big enough to be split over threads and column blocks.
  for (size_t threads : {1, 2}) {
    Case cs;
    cs.m = 257;
    cs.n = 301;
    cs.k = 509;
    cs.za = 77;
    cs.bias = true;
    cs.threads = threads;
    run_case(cs, 99 + threads);
  }
}

// Every activation zero point 0..255.
void test_zero_points(const Path& path) {
  select(path);
  for (int za = 0; za < 256; ++za) {
    Case cs;
    cs.m = 7;
    cs.n = 19;
    cs.k = 13;
    cs.za = static_cast<uint8_t>(za);
    cs.bias = za % 2;
    run_case(cs, 5000 + za);
  }
}

// A = 255, B = -128 or 127: every pair sum of vpmaddubsw would saturate int16. Also a depth whose
// exact sum leaves int32 (K = 70001: 255 * -128 * K < -2^31), which must wrap identically.
void test_extremes(const Path& path) {
  select(path);
  for (Case::Values v : {Case::kExtremeLow, Case::kExtremeHigh})
    for (size_t k : {4, 63, 256, 1001}) {
      Case cs;
      cs.m = 13;
      cs.n = 37;
      cs.k = k;
      cs.values = v;
      run_case(cs, k);
      cs.za = 255;  // (A - za) == 0: the correction must cancel the sum exactly
      run_case(cs, k + 1);
    }
  Case wrap;
  wrap.m = 2;
  wrap.n = 17;
  wrap.k = 70001;
  wrap.values = Case::kExtremeLow;
  run_case(wrap, 7);
}

// Weights packed once are valid on every path (the layout is shared).
void test_packed_across_paths(const std::vector<Path>& paths) {
  Rng rng(42);
  const size_t m = 29, n = 45, k = 103;
  std::vector<uint8_t> a(m * k);
  std::vector<int8_t> b(k * n);
  for (auto& v : a) v = static_cast<uint8_t>(rng.next());
  for (auto& v : b) v = static_cast<int8_t>(rng.next());
  select(paths.front());
  const kiln::PackedS8B packed(false, k, n, b.data(), n);
  std::vector<int32_t> want(m * n), got(m * n);
  kiln::s8gemm_naive(false, m, n, k, a.data(), k, 3, b.data(), n, nullptr, want.data(), n);
  for (const Path& p : paths) {
    select(p);
    std::fill(got.begin(), got.end(), 0x55555555);
    kiln::s8gemm(m, a.data(), k, 3, packed, nullptr, got.data(), n);
    check(got == want, std::string("packed once, run on ") + kiln::s8_gemm_kernel_name());
  }
}

// A given as row pointers (the int8 convolution without im2col) on the byte kernels: each row's segments point at
// random places of one byte pool, some ending where its guard page begins, some shared between
// rows; the requantized and dequantized results equal the oracle's on the gathered rows, bit for
// bit, over tile edges, one to five segments, 1 to 24 groups per segment and 1 or 2 threads.
void test_indirect(const Path& path) {
  select(path);
  const kiln::S8GemmKernels& kern = kiln::s8_gemm_active_kernels();
  if (kern.a_layout != kiln::S8ALayout::kU8) {  // refused: only byte kernels read through rows
    bool threw = false;
    try {
      kiln::S8IndirectA none;
      kiln::s8gemm_requantize_indirect(kern, 1, none, 0, kiln::PackedS8B(false, 0, 1, nullptr, 1), nullptr,
                                       kiln::S8Requantization(), nullptr, 1, 1);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    check(threw, std::string("indirect A refused on ") + kern.name);
    return;
  }
  Rng rng(777 + static_cast<int>(path.isa) * 5 + path.avxvnni);
  const size_t ms[] = {1, 5, 6, 7, 13, 64, 131};
  const size_t ns[] = {3, 16, 64, 65, 130};
  const size_t segs[] = {1, 3, 5};
  const size_t seg_groups[] = {1, 4, 24};
  for (size_t m : ms)
    for (size_t n : ns) {
      const size_t segments = segs[rng.below(3)], sg = seg_groups[rng.below(3)];
      const size_t seg_bytes = sg * 4, k = segments * seg_bytes;
      Guarded<uint8_t> pool(seg_bytes * 3 + 97);
      for (size_t i = 0; i < pool.size(); ++i) pool[i] = static_cast<uint8_t>(rng.next());
      std::vector<const uint8_t*> rows(segments * m);
      for (auto& p : rows) {
        const size_t last = pool.size() - seg_bytes;
        p = pool.data() + (rng.below(4) == 0 ? last : rng.below(last + 1));
      }
      std::vector<uint8_t> dense(m * k);
      for (size_t i = 0; i < m; ++i)
        for (size_t sgi = 0; sgi < segments; ++sgi) std::memcpy(&dense[i * k + sgi * seg_bytes], rows[sgi * m + i], seg_bytes);
      std::vector<int8_t> b(k * n);
      for (auto& v : b) v = static_cast<int8_t>(rng.next());
      std::vector<int32_t> bias(n);
      for (auto& v : bias) v = static_cast<int32_t>(rng.below(20001)) - 10000;
      const uint8_t za = static_cast<uint8_t>(rng.next());
      std::vector<int32_t> want(m * n);
      kiln::s8gemm_naive(false, m, n, k, dense.data(), k, za, b.data(), n, bias.data(), want.data(), n);
      const kiln::PackedS8B packed(false, k, n, b.data(), n);
      std::vector<float> scale(n);
      for (auto& v : scale) v = rng.uniform(0.5f, 2.0f) / static_cast<float>(k * 64);
      kiln::S8IndirectA ind;
      ind.rows = rows.data();
      ind.segments = segments;
      ind.segment_groups = sg;
      const size_t threads = 1 + rng.below(2);
      char what[160];
      std::snprintf(what, sizeof(what), "indirect A on %s: m=%zu n=%zu segments=%zu x %zu groups threads=%zu",
                    kern.name, m, n, segments, sg, threads);

      kiln::S8Requantization rq;
      rq.scale = scale.data();
      rq.zero_point = static_cast<uint8_t>(rng.next());
      rq.min = 0;
      rq.max = 255;
      const float lo = -static_cast<float>(rq.zero_point), hi = 255.0f - rq.zero_point;
      bool ok = true;
      for (uint8_t sentinel : {uint8_t(0x5A), uint8_t(0xA5)}) {
        Guarded<uint8_t> c(m * n);
        std::memset(c.data(), sentinel, c.size());
        kiln::s8gemm_requantize_indirect(kern, m, ind, za, packed, bias.data(), rq, c.data(), n, threads);
        for (size_t at = 0; at < m * n && ok; ++at) {
          ok = c[at] == kiln::requantize_u8(want[at], scale[at % n], rq.zero_point, lo, hi);
        }
      }
      check(ok, std::string(what) + ": uint8");
      kiln::S8Dequantization dq;
      dq.scale = scale.data();
      Guarded<float> cf(m * n);
      for (size_t i = 0; i < cf.size(); ++i) cf[i] = std::numeric_limits<float>::quiet_NaN();
      kiln::s8gemm_dequantize_indirect(kern, m, ind, za, packed, bias.data(), dq, cf.data(), n, threads);
      ok = true;
      for (size_t at = 0; at < m * n && ok; ++at) {
        const float w = kiln::dequantize_f32(want[at], scale[at % n], 0.0f);
        ok = std::memcmp(&w, &cf[at], sizeof(float)) == 0;
      }
      check(ok, std::string(what) + ": float");
    }
}

#if defined(__x86_64__)
// What an unguarded vpmaddubsw kernel computes for one output (A row x B column, K a multiple of
// 32): the int16 pair sums saturate before vpmaddwd widens them.
__attribute__((target("avx2"))) int32_t naive_maddubs_dot(const uint8_t* a, const int8_t* b, size_t k) {
  __m256i acc = _mm256_setzero_si256();
  for (size_t p = 0; p < k; p += 32) {
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + p));
    const __m256i bv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + p));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(av, bv), _mm256_set1_epi16(1)));
  }
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
  int32_t s = 0;
  for (int32_t x : lanes) s += x;
  return s;
}

// Shows the bug the exact kernels avoid: on A = 255, B = -128 the real vpmaddubsw saturates (each
// pair gives -32768 instead of -65280), while every kernel here returns the exact sum.
void test_maddubs_would_fail() {
  if (!kiln::cpu_features().avx2) return;
  const size_t k = 64;
  std::vector<uint8_t> a(k, 255);
  std::vector<int8_t> b(k, -128);
  const int32_t exact = 255 * -128 * static_cast<int32_t>(k);
  const int32_t naive = naive_maddubs_dot(a.data(), b.data(), k);
  check(naive == -32768 * static_cast<int32_t>(k / 2) && naive != exact, "a plain vpmaddubsw saturates on 255 x -128");
  std::printf("vpmaddubsw on A=255, B=-128, K=64: %d (exact %d)\n", naive, exact);
  std::vector<int8_t> b_pos(k, 127);
  check(naive_maddubs_dot(a.data(), b_pos.data(), k) != 255 * 127 * static_cast<int32_t>(k),
        "a plain vpmaddubsw saturates on 255 x 127");
}
#endif

}  // namespace

int main() {
  const std::vector<Path> paths = all_paths();
  std::printf("CPU: %s; paths:", kiln::cpu_features().brand.c_str());
  for (const Path& p : paths) {
    select(p);
    std::printf(" %s", kiln::s8_gemm_kernel_name());
  }
  std::printf("\n");
  test_oracle();
  test_epilogue_spec();
#if defined(__x86_64__)
  test_maddubs_would_fail();
#endif
  for (const Path& p : paths) {
    const int before = g_failed;
    test_shapes(p);
    test_zero_points(p);
    test_extremes(p);
    test_indirect(p);
    select(p);
    std::printf("%-11s %s\n", kiln::s8_gemm_kernel_name(), g_failed == before ? "ok" : "FAILED");
  }
  test_packed_across_paths(paths);
  kiln::set_s8_gemm_force_avxvnni(false);
  return kiln_test::finish();
}
