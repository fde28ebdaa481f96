// The normalization kernels (norm/): every ISA's row kernels against the scalar ones on random
// rows of odd lengths (page-guarded, so a vector tail that reads or writes past the row faults),
// and the LayerNorm / GroupNorm drivers on every table against a float64 oracle.
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "common/dispatch.h"
#include "kiln/cpu.h"
#include "norm/norm.h"
#include "test-util.h"

namespace {

using kiln::DispatchTable;
using kiln::Isa;
using kiln_test::check;
using kiln_test::Guarded;
using kiln_test::Rng;

std::string label(const DispatchTable& t, const std::string& what) { return std::string(kiln::isa_name(t.isa)) + " " + what; }

bool close(float a, float b, float tol) { return std::fabs(a - b) <= tol * (1.0f + std::fabs(b)); }

const size_t kLengths[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 96, 127, 200, 768, 1001, 3136, 4096, 4097, 9000, 100003};

void test_rows(const DispatchTable& t, const DispatchTable& ref, Rng& rng) {
  check(t.f32_norm.moments && t.f32_norm.normalize_row && t.f32_norm.scale_shift_row, label(t, "norm kernels set"));
  for (size_t n : kLengths) {
    Guarded<float> x(n), scale(n), bias(n), y(n);
    const float offset = rng.uniform(-50.0f, 50.0f);  // a large mean: the variance must not cancel
    for (size_t i = 0; i < n; ++i) x[i] = offset + rng.uniform(-2.0f, 2.0f);
    scale.randomize(rng);
    bias.randomize(rng);
    float m0, v0, m1, v1;
    ref.f32_norm.moments(x.data(), n, &m0, &v0);
    t.f32_norm.moments(x.data(), n, &m1, &v1);
    const std::string len = " n=" + std::to_string(n);
    check(close(m1, m0, 1e-5f), label(t, "moments mean" + len));
    check(std::fabs(v1 - v0) <= 1e-4f * (v0 + 1e-3f), label(t, "moments var" + len));
    const float rstd = 1.0f / std::sqrt(v0 + 1e-5f);
    std::vector<float> want(n);
    for (const bool with_bias : {true, false}) {
      ref.f32_norm.normalize_row(x.data(), n, m0, rstd, scale.data(), with_bias ? bias.data() : nullptr, want.data());
      t.f32_norm.normalize_row(x.data(), n, m0, rstd, scale.data(), with_bias ? bias.data() : nullptr, y.data());
      bool ok = true;
      for (size_t i = 0; i < n; ++i) ok = ok && close(y[i], want[i], 1e-5f);
      check(ok, label(t, std::string("normalize row") + (with_bias ? "" : " without bias") + len));
    }
    ref.f32_norm.scale_shift_row(x.data(), n, 0.37f, -1.5f, want.data());
    t.f32_norm.scale_shift_row(x.data(), n, 0.37f, -1.5f, y.data());
    bool ok = true;
    for (size_t i = 0; i < n; ++i) ok = ok && close(y[i], want[i], 1e-6f);
    check(ok, label(t, "scale shift row" + len));
    // In place.
    std::vector<float> copy(x.data(), x.data() + n);
    t.f32_norm.scale_shift_row(x.data(), n, 0.37f, -1.5f, x.data());
    ok = true;
    for (size_t i = 0; i < n; ++i) ok = ok && close(x[i], want[i], 1e-6f);
    check(ok, label(t, "scale shift row in place" + len));
  }
}

void test_layer_norm(const DispatchTable& t, Rng& rng) {
  for (size_t rows : {1, 3, 50}) {
    for (size_t d : {1, 5, 24, 96, 385}) {
      std::vector<float> x(rows * d), y(rows * d), scale(d), bias(d);
      for (float& v : x) v = rng.uniform(-3.0f, 3.0f) + 10.0f;
      for (float& v : scale) v = rng.uniform();
      for (float& v : bias) v = rng.uniform();
      kiln::layer_norm_forward(t.f32_norm, x.data(), y.data(), rows, d, scale.data(), bias.data(), 1e-5f, 4);
      bool ok = true;
      for (size_t r = 0; r < rows; ++r) {
        double m = 0, v = 0;
        for (size_t j = 0; j < d; ++j) m += x[r * d + j];
        m /= static_cast<double>(d);
        for (size_t j = 0; j < d; ++j) v += (x[r * d + j] - m) * (x[r * d + j] - m);
        v /= static_cast<double>(d);
        for (size_t j = 0; j < d; ++j) {
          const double want = (x[r * d + j] - m) / std::sqrt(v + 1e-5) * scale[j] + bias[j];
          ok = ok && std::fabs(y[r * d + j] - want) <= 1e-4 * (1 + std::fabs(want));
        }
      }
      check(ok, label(t, "layer norm " + std::to_string(rows) + "x" + std::to_string(d)));
    }
  }
}

void test_group_norm(const DispatchTable& t, Rng& rng) {
  struct Case { size_t images, channels, groups, spatial; };
  for (const Case c : {Case{1, 4, 2, 9}, Case{2, 6, 3, 1}, Case{3, 5, 5, 17}, Case{2, 8, 1, 49}, Case{1, 32, 8, 3136}}) {
    const size_t per = c.channels * c.spatial;
    std::vector<float> x(c.images * per), y(x.size()), scale(c.channels), bias(c.channels);
    for (float& v : x) v = rng.uniform(-3.0f, 3.0f) - 5.0f;
    for (float& v : scale) v = rng.uniform();
    for (float& v : bias) v = rng.uniform();
    kiln::group_norm_forward(t.f32_norm, x.data(), y.data(), c.images, c.channels, c.groups, c.spatial, scale.data(),
                             bias.data(), 1e-5f, 4);
    const size_t cg = c.channels / c.groups, ge = cg * c.spatial;
    bool ok = true;
    for (size_t g = 0; g < c.images * c.groups; ++g) {
      const float* xg = x.data() + g * ge;
      double m = 0, v = 0;
      for (size_t i = 0; i < ge; ++i) m += xg[i];
      m /= static_cast<double>(ge);
      for (size_t i = 0; i < ge; ++i) v += (xg[i] - m) * (xg[i] - m);
      v /= static_cast<double>(ge);
      for (size_t i = 0; i < ge; ++i) {
        const size_t ch = (g % c.groups) * cg + i / c.spatial;
        const double want = (xg[i] - m) / std::sqrt(v + 1e-5) * scale[ch] + bias[ch];
        ok = ok && std::fabs(y[g * ge + i] - want) <= 1e-4 * (1 + std::fabs(want));
      }
    }
    check(ok, label(t, "group norm C=" + std::to_string(c.channels) + " G=" + std::to_string(c.groups) +
                           " S=" + std::to_string(c.spatial)));
  }
}

}  // namespace

int main() {
  const DispatchTable* ref = kiln::dispatch_for(Isa::kScalar);
  check(ref != nullptr, "the scalar table exists");
  if (ref == nullptr) return kiln_test::finish();
  Rng rng(23);
  for (Isa isa : kiln_test::isas_to_test()) {
    const DispatchTable* t = kiln::dispatch_for(isa);
    if (t == nullptr) continue;
    test_rows(*t, *ref, rng);
    test_layer_norm(*t, rng);
    test_group_norm(*t, rng);
  }
  return kiln_test::finish("norm: ");
}
