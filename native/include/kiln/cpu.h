// CPU feature detection and the instruction-set level the kernels dispatch on.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace kiln {

// Ordered: a higher level implies every feature of the lower ones.
enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3 };

struct CpuFeatures {
  std::string vendor;
  std::string brand;
  bool sse41 = false, avx = false, fma = false, f16c = false, avx2 = false;
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512vnni = false, avxvnni = false;
  // Byte permutes (vpermi2b): no ISA level of their own; a VNNI table takes a VBMI kernel where
  // the CPU has it (Ice Lake and later, Zen 4; Cascade Lake has VNNI without it).
  bool avx512vbmi = false;
  bool os_avx = false, os_avx512 = false;  // XCR0 says the OS saves the registers
  size_t l2_bytes = 0;  // one core's L2 (CPUID's cache descriptors), 0 when not reported
};

const CpuFeatures& cpu_features();

// One core's L2 in bytes: cpu_features().l2_bytes, or 1 MiB (the smallest L2 of the x86 cores we
// tune for) where CPUID does not report it (some VMs and emulators). Cache-blocking choices that
// depend on it must give the same results either way, only at a different speed.
size_t l2_cache_bytes();

// Best ISA the CPU and OS support.
Isa best_isa();
// ISA levels this CPU can run, lowest first.
std::vector<Isa> supported_isas();

const char* isa_name(Isa isa);
// Returns false when the name is unknown.
bool parse_isa(const std::string& name, Isa* out);

}  // namespace kiln
