// The table of ISA-specific kernels, one per ISA, filled once at start-up (dispatch.cc) from the
// per-ISA translation units; set_active_isa() / KILN_ISA only switch which table is active. Every
// op family looks its kernels up here, once per call, never per row, and never compares ISAs:
// an entry a path does not have on an ISA is null. Nothing outside native/src includes this file.
#pragma once
#include <cstddef>

#include "compare/compare-ukernel.h"
#include "conv/conv-ukernel.h"
#include "elementwise/f32-math-ukernel.h"
#include "f32-gemm/f32-gemm-ukernel.h"
#include "kiln/cpu.h"
#include "norm/norm-ukernel.h"
#include "pool/pool-rows.h"
#include "resize/resize-rows.h"
#include "s8-conv/s8-conv-ukernel.h"
#include "s8-gemm/s8-gemm-ukernel.h"
#include "sparse/sparse-conv-ukernel.h"
#include "sparse/sparse-nm-ukernel.h"
#include "s8-sparse/s8-sparse-ukernel.h"
#include "sparse/sparse-ukernel.h"

namespace kiln {

struct DispatchTable {
  Isa isa = Isa::kScalar;
  F32GemmKernels f32_gemm;
  S8GemmKernels s8_gemm;
  S8GemmKernels s8_gemm_avxvnni;  // VEX vpdpbusd on ymm, where the CPU has AVX-VNNI (levels >= avx2)
  F32ConvKernels f32_conv;
  F32PoolKernels f32_pool;
  F32NormKernels f32_norm;  // LayerNorm / GroupNorm / InstanceNorm rows (norm/)
  F32MathKernels f32_math;  // element-wise activations / math and row reductions of the plan
  F32ResizeKernels f32_resize;  // Resize rows (resize/)
  F32CompareKernels f32_compare;  // comparisons to bool values and Where (compare/)
  S8ConvKernels s8_conv;
  F32SpmmKernels f32_spmm;  // sparse fp32 weights x dense X, one kernel per pattern
  F32NmSpmmKernels f32_nm_spmm;  // N:M packed fp32 weights x dense X, one kernel per (M, N)
  F32SparseConvKernels f32_sparse_conv;  // direct sparse stride-1 convolution, one kernel per block height
  S8SparseKernels s8_sparse;           // sparse int8 1x4-block conv and GEMM (s8-sparse/)
  S8SparseKernels s8_sparse_avxvnni;   // their AVX-VNNI ymm versions, where the CPU has AVX-VNNI
};

// The table for the active ISA (best supported, or KILN_ISA, or set_active_isa()).
const DispatchTable& dispatch();

// The table of `isa` (any ISA this CPU supports; tests walk them), or null when it does not.
const DispatchTable* dispatch_for(Isa isa);

// One per ISA level, each run on a table that already holds the level below (scalar first);
// they only assign function pointers. Defined in dispatch.cc, except the GEMM and SpMM families'
// own fill functions, which live beside their kernels (so do the direct sparse convolution's).
void fill_dispatch_scalar(DispatchTable* table);
void fill_dispatch_avx2(DispatchTable* table);
void fill_dispatch_avx512(DispatchTable* table);
void fill_dispatch_avx512vnni(DispatchTable* table);

void fill_f32_gemm_scalar(DispatchTable* table);
void fill_f32_gemm_avx2(DispatchTable* table);
void fill_f32_gemm_avx512(DispatchTable* table);

void fill_f32_spmm_scalar(DispatchTable* table);
void fill_f32_spmm_avx2(DispatchTable* table);
void fill_f32_spmm_avx512(DispatchTable* table);

void fill_f32_nm_spmm_scalar(DispatchTable* table);
void fill_f32_nm_spmm_avx2(DispatchTable* table);
void fill_f32_nm_spmm_avx512(DispatchTable* table);

void fill_f32_sparse_conv_scalar(DispatchTable* table);
void fill_f32_sparse_conv_avx2(DispatchTable* table);
void fill_f32_sparse_conv_avx512(DispatchTable* table);

}  // namespace kiln
