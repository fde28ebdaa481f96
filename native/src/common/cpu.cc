#include "kiln/cpu.h"

#include <cstring>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define KILN_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace kiln {
namespace {

#ifdef KILN_X86
void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
#if defined(_MSC_VER)
  __cpuidex(reinterpret_cast<int*>(r), static_cast<int>(leaf), static_cast<int>(sub));
#else
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

unsigned long long xgetbv0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
#endif
}
#endif

#ifdef KILN_X86
// The L2 from the deterministic cache parameters (Intel leaf 4, AMD leaf 0x8000001D: the same
// layout), sub-leaves until a null type: ways x partitions x line size x sets.
size_t l2_from_cache_leaf(unsigned leaf) {
  unsigned r[4];
  for (unsigned sub = 0; sub < 16; ++sub) {
    cpuid(leaf, sub, r);
    const unsigned type = r[0] & 0x1f, level = (r[0] >> 5) & 0x7;
    if (type == 0) break;
    if (level == 2 && (type == 2 || type == 3)) {  // data or unified
      return size_t{((r[1] >> 22) & 0x3ff) + 1} * (((r[1] >> 12) & 0x3ff) + 1) * ((r[1] & 0xfff) + 1) * (size_t{r[2]} + 1);
    }
  }
  return 0;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#ifdef KILN_X86
  unsigned r[4];
  cpuid(0, 0, r);
  const unsigned max_leaf = r[0];
  char vendor[13];
  std::memcpy(vendor + 0, &r[1], 4);
  std::memcpy(vendor + 4, &r[3], 4);
  std::memcpy(vendor + 8, &r[2], 4);
  vendor[12] = 0;
  f.vendor = vendor;

  cpuid(0x80000000u, 0, r);
  if (r[0] >= 0x80000004u) {
    char brand[49] = {0};
    for (unsigned i = 0; i < 3; ++i) {
      cpuid(0x80000002u + i, 0, r);
      std::memcpy(brand + 16 * i, r, 16);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  }

  if (max_leaf < 1) return f;
  cpuid(1, 0, r);
  const unsigned ecx1 = r[2];
  f.sse41 = (ecx1 >> 19) & 1;
  f.fma = (ecx1 >> 12) & 1;
  f.f16c = (ecx1 >> 29) & 1;
  const bool osxsave = (ecx1 >> 27) & 1;
  const bool avx_hw = (ecx1 >> 28) & 1;
  if (osxsave) {
    const unsigned long long xcr0 = xgetbv0();
    f.os_avx = (xcr0 & 0x6) == 0x6;            // XMM and YMM state
    f.os_avx512 = f.os_avx && (xcr0 & 0xE0) == 0xE0;  // opmask, ZMM_Hi256, Hi16_ZMM
  }
  f.avx = avx_hw && f.os_avx;
  f.fma = f.fma && f.os_avx;
  f.f16c = f.f16c && f.os_avx;
  if (max_leaf >= 7) {
    cpuid(7, 0, r);
    const unsigned ebx7 = r[1], ecx7 = r[2];
    f.avx2 = f.avx && ((ebx7 >> 5) & 1);
    f.avx512f = f.os_avx512 && ((ebx7 >> 16) & 1);
    f.avx512dq = f.avx512f && ((ebx7 >> 17) & 1);
    f.avx512bw = f.avx512f && ((ebx7 >> 30) & 1);
    f.avx512vl = f.avx512f && ((ebx7 >> 31) & 1);
    f.avx512vnni = f.avx512f && ((ecx7 >> 11) & 1);
    f.avx512vbmi = f.avx512bw && ((ecx7 >> 1) & 1);
    cpuid(7, 1, r);
    f.avxvnni = f.avx2 && ((r[0] >> 4) & 1);
  }
  if (max_leaf >= 4 && f.vendor == "GenuineIntel") f.l2_bytes = l2_from_cache_leaf(4);
  cpuid(0x80000000u, 0, r);
  const unsigned max_ext = r[0];
  if (f.l2_bytes == 0 && max_ext >= 0x8000001Du && f.vendor == "AuthenticAMD") f.l2_bytes = l2_from_cache_leaf(0x8000001Du);
  if (f.l2_bytes == 0 && max_ext >= 0x80000006u) {
    cpuid(0x80000006u, 0, r);  // AMD (and Intel) legacy: L2 KiB in ECX[31:16]
    f.l2_bytes = size_t{r[2] >> 16} << 10;
  }
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::vector<Isa> supported_isas() {
  const CpuFeatures& f = cpu_features();
  std::vector<Isa> out{Isa::kScalar};
  if (f.avx2 && f.fma) out.push_back(Isa::kAvx2);
  if (f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl) {
    out.push_back(Isa::kAvx512);
    if (f.avx512vnni) out.push_back(Isa::kAvx512Vnni);
  }
  return out;
}

Isa best_isa() { return supported_isas().back(); }

size_t l2_cache_bytes() {
  const size_t l2 = cpu_features().l2_bytes;
  return l2 != 0 ? l2 : size_t{1} << 20;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Vnni: return "avx512vnni";
  }
  return "unknown";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni}) {
    if (name == isa_name(isa)) {
      *out = isa;
      return true;
    }
  }
  return false;
}

}  // namespace kiln
