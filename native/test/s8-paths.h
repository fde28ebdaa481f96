// The int8 kernel paths the s8 tests walk: every ISA level this CPU has (scalar first), and the
// AVX-VNNI GEMM kernels forced on where the CPU has them.
#pragma once
#include <string>
#include <vector>

#include "kiln/cpu.h"
#include "kiln/dispatch.h"
#include "kiln/s8-gemm.h"
#include "test-util.h"

namespace kiln_test {

// A kernel family to test: an ISA level, optionally with the AVX-VNNI kernels forced on.
struct Path {
  kiln::Isa isa;
  bool avxvnni;
};

inline std::vector<Path> all_paths() {
  std::vector<Path> out;
  for (kiln::Isa isa : kiln_test::isas_to_test()) out.push_back({isa, false});
  if (kiln::cpu_features().avxvnni) out.push_back({kiln::best_isa(), true});
  return out;
}

inline std::string path_name(const Path& p) {
  return std::string(kiln::isa_name(p.isa)) + (p.avxvnni ? "+avxvnni" : "");
}

inline void select(const Path& p) {
  kiln::set_active_isa(p.isa);
  kiln::set_s8_gemm_force_avxvnni(p.avxvnni);
}

}  // namespace kiln_test
