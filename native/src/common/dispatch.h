// The table of ISA-specific kernels, filled once per ISA from the per-ISA translation units.
// Kernels look up their micro-kernels here; nothing outside native/src includes this file.
#pragma once
#include <cstddef>

#include "kiln/cpu.h"
#include "kiln/f32-gemm.h"
#include "s8-gemm/s8-gemm-ukernel.h"

namespace kiln {

struct DispatchTable {
  Isa isa = Isa::kScalar;
  F32GemmKernels f32_gemm;
  S8GemmKernels s8_gemm;
  S8GemmKernels s8_gemm_avxvnni;  // VEX vpdpbusd on ymm, where the CPU has AVX-VNNI (levels >= avx2)
};

// The table for the active ISA (best supported, or KILN_ISA, or set_active_isa()).
const DispatchTable& dispatch();

// Each ISA translation unit provides one of these; they only assign function pointers.
void fill_dispatch_scalar(DispatchTable* table);
void fill_dispatch_avx2(DispatchTable* table);
void fill_dispatch_avx512(DispatchTable* table);
void fill_dispatch_avx512vnni(DispatchTable* table);

}  // namespace kiln
