// The bool family (compare/): every ISA this CPU has, through its dispatch table, against an
// independent per-element definition, on page-guarded inputs (a read past the end faults) and
// sentinel-filled outputs (a write past n is seen), with NaN, +-0, +-inf and both operand strides.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "check.h"
#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "test-util.h"

namespace {

using kiln::DispatchTable;
using kiln::F32ClassifyKind;
using kiln::F32CompareKind;
using kiln::Isa;
using kiln_test::check;
using kiln_test::Guarded;
using kiln_test::Rng;

constexpr uint8_t kSentinel = 0xAB;
constexpr size_t kPad = 5;  // sentinel bytes / floats after each output
const float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const size_t kLengths[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000};

std::string label(const DispatchTable& t, const std::string& what, size_t n) {
  return std::string(kiln::isa_name(t.isa)) + " " + what + " n=" + std::to_string(n);
}

// Mostly small integers (many ties for Equal / LessOrEqual), with NaN, +-0 and +-inf mixed in.
void fill(float* p, size_t n, Rng& rng) {
  static const float kSpecial[] = {kNaN, 0.0f, -0.0f, kInf, -kInf, 1.0f, -1.0f};
  for (size_t i = 0; i < n; ++i) {
    const size_t r = rng.below(16);
    p[i] = r < 7 ? kSpecial[r] : static_cast<float>(static_cast<int>(rng.below(7)) - 3) * 0.5f;
  }
}

bool expect_compare(F32CompareKind k, float a, float b) {
  switch (k) {
    case F32CompareKind::kEqual: return !std::isnan(a) && !std::isnan(b) && a == b;
    case F32CompareKind::kLess: return !std::isnan(a) && !std::isnan(b) && a < b;
    case F32CompareKind::kLessOrEqual: return !std::isnan(a) && !std::isnan(b) && a <= b;
    case F32CompareKind::kGreater: return !std::isnan(a) && !std::isnan(b) && a > b;
    case F32CompareKind::kGreaterOrEqual: return !std::isnan(a) && !std::isnan(b) && a >= b;
  }
  return false;
}

bool expect_classify(F32ClassifyKind k, float x) {
  const bool nan = x != x;
  switch (k) {
    case F32ClassifyKind::kIsNaN: return nan;
    case F32ClassifyKind::kIsInf: return x == kInf || x == -kInf;
    case F32ClassifyKind::kIsPosInf: return x == kInf;
    case F32ClassifyKind::kIsNegInf: return x == -kInf;
    case F32ClassifyKind::kNonZero: return nan || (x != 0.0f);
  }
  return false;
}

bool tail_untouched(const uint8_t* y, size_t n) {
  for (size_t i = n; i < n + kPad; ++i) {
    if (y[i] != kSentinel) return false;
  }
  return true;
}

void test_compare(const DispatchTable& t, Rng& rng) {
  for (F32CompareKind k : {F32CompareKind::kEqual, F32CompareKind::kLess, F32CompareKind::kLessOrEqual,
                           F32CompareKind::kGreater, F32CompareKind::kGreaterOrEqual}) {
    for (size_t n : kLengths) {
      for (size_t sa : {0, 1}) {
        for (size_t sb : {0, 1}) {
          Guarded<float> a(sa ? n : 1), b(sb ? n : 1);
          fill(a.data(), a.size(), rng);
          fill(b.data(), b.size(), rng);
          Guarded<uint8_t> y(n + kPad);
          y.fill(kSentinel);
          t.f32_compare.compare_row(k, a.data(), sa, b.data(), sb, y.data(), n);
          bool ok = true;
          for (size_t i = 0; i < n; ++i) ok = ok && y[i] == (expect_compare(k, a[i * sa], b[i * sb]) ? 1 : 0);
          const std::string what = "compare kind " + std::to_string(static_cast<int>(k)) + " sa=" + std::to_string(sa) + " sb=" + std::to_string(sb);
          check(ok, label(t, what, n));
          check(tail_untouched(y.data(), n), label(t, what + " writes nothing past n", n));
        }
      }
    }
  }
}

void test_classify(const DispatchTable& t, Rng& rng) {
  for (F32ClassifyKind k : {F32ClassifyKind::kIsNaN, F32ClassifyKind::kIsInf, F32ClassifyKind::kIsPosInf,
                            F32ClassifyKind::kIsNegInf, F32ClassifyKind::kNonZero}) {
    for (size_t n : kLengths) {
      Guarded<float> x(n);
      fill(x.data(), n, rng);
      Guarded<uint8_t> y(n + kPad);
      y.fill(kSentinel);
      t.f32_compare.classify(k, x.data(), y.data(), n);
      bool ok = true;
      for (size_t i = 0; i < n; ++i) ok = ok && y[i] == (expect_classify(k, x[i]) ? 1 : 0);
      const std::string what = "classify kind " + std::to_string(static_cast<int>(k));
      check(ok, label(t, what, n));
      check(tail_untouched(y.data(), n), label(t, what + " writes nothing past n", n));
    }
  }
}

void test_where(const DispatchTable& t, Rng& rng) {
  for (size_t n : kLengths) {
    for (int strides = 0; strides < 8; ++strides) {
      const size_t sc = strides & 1, sx = (strides >> 1) & 1, sz = (strides >> 2) & 1;
      Guarded<uint8_t> c(sc ? n : 1);
      Guarded<float> x(sx ? n : 1), z(sz ? n : 1);
      for (size_t i = 0; i < c.size(); ++i) c[i] = static_cast<uint8_t>(rng.below(2));
      fill(x.data(), x.size(), rng);
      fill(z.data(), z.size(), rng);
      Guarded<float> y(n + kPad);
      y.fill(-7.0f);
      t.f32_compare.where_row(c.data(), sc, x.data(), sx, z.data(), sz, y.data(), n);
      bool ok = true;
      for (size_t i = 0; i < n; ++i) {
        const float want = c[i * sc] ? x[i * sx] : z[i * sz];
        ok = ok && std::memcmp(&y[i], &want, sizeof(float)) == 0;  // bit for bit: NaN and -0 kept
      }
      bool tail = true;
      for (size_t i = n; i < n + kPad; ++i) tail = tail && y[i] == -7.0f;
      const std::string what = "where strides " + std::to_string(sc) + std::to_string(sx) + std::to_string(sz);
      check(ok, label(t, what, n));
      check(tail, label(t, what + " writes nothing past n", n));
    }
  }
}

}  // namespace

int main() {
  Rng rng(23);
  int tables = 0;
  for (Isa isa : kiln_test::isas_to_test()) {
    const DispatchTable* t = kiln::dispatch_for(isa);
    check(t != nullptr, std::string("table of ") + kiln::isa_name(isa));
    if (t == nullptr) continue;
    ++tables;
    check(t->f32_compare.compare_row && t->f32_compare.classify && t->f32_compare.where_row,
          std::string(kiln::isa_name(isa)) + " bool kernels set");
    test_compare(*t, rng);
    test_classify(*t, rng);
    test_where(*t, rng);
  }
  check(tables >= 1, "at least the scalar table");
  return kiln_test::finish("compare: ");
}
