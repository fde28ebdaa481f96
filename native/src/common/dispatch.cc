#include "common/dispatch.h"

#include <atomic>
#include <cstdlib>

#include "kiln/dispatch.h"

namespace kiln {
namespace {

struct Tables {
  DispatchTable by_isa[4];
  std::atomic<const DispatchTable*> active{nullptr};
  std::string override_error;

  Tables() {
    // Every table starts as the scalar one so a missing ISA kernel falls back, never crashes.
    for (int i = 0; i < 4; ++i) {
      fill_dispatch_scalar(&by_isa[i]);
      by_isa[i].isa = static_cast<Isa>(i);
    }
    for (Isa isa : supported_isas()) {
      DispatchTable* t = &by_isa[static_cast<int>(isa)];
      if (isa >= Isa::kAvx2) fill_dispatch_avx2(t);
      if (isa >= Isa::kAvx512) fill_dispatch_avx512(t);
      if (isa >= Isa::kAvx512Vnni) fill_dispatch_avx512vnni(t);
      t->isa = isa;
    }
    Isa chosen = best_isa();
    if (const char* env = std::getenv("KILN_ISA")) {
      Isa wanted;
      if (!parse_isa(env, &wanted)) {
        override_error = std::string("KILN_ISA=") + env +
                         " is not one of scalar, avx2, avx512, avx512vnni; using " + isa_name(chosen);
      } else if (wanted > best_isa()) {
        override_error = std::string("KILN_ISA=") + env + " is not supported by this CPU; using " +
                         isa_name(chosen);
      } else {
        chosen = wanted;
      }
    }
    active.store(&by_isa[static_cast<int>(chosen)]);
  }
};

Tables& tables() {
  static Tables t;
  return t;
}

}  // namespace

const DispatchTable& dispatch() { return *tables().active.load(std::memory_order_acquire); }

Isa active_isa() { return dispatch().isa; }

bool set_active_isa(Isa isa) {
  if (isa > best_isa()) return false;
  Tables& t = tables();
  t.active.store(&t.by_isa[static_cast<int>(isa)], std::memory_order_release);
  return true;
}

const std::string& isa_override_error() { return tables().override_error; }

}  // namespace kiln
