#include "common/dispatch.h"

#include <atomic>
#include <cstdlib>

#include "conv/channel-block-plan.h"
#include "conv/depthwise.h"
#include "conv/direct-conv.h"
#include "conv/im2col.h"
#include "conv/small-conv.h"
#include "conv/winograd.h"
#include "kiln/dispatch.h"
#include "s8-conv/maxpool-u8.h"
#include "s8-conv/quantize-rows.h"
#include "s8-conv/s8-depthwise.h"
#include "s8-conv/s8-grouped.h"
#include "s8-conv/s8-pointwise-planes.h"
#include "s8-conv/s8-small-conv.h"

namespace kiln {

// The registry: what each ISA level adds over the one below. The kernels themselves live in
// their families' files (the scalar ones in each family's *-reference.cc).

void fill_dispatch_scalar(DispatchTable* t) {
  fill_f32_gemm_scalar(t);
  fill_s8_gemm_scalar(t);
  fill_f32_spmm_scalar(t);
  fill_f32_nm_spmm_scalar(t);
  fill_f32_sparse_conv_scalar(t);
  fill_s8_sparse_scalar(t);
  t->f32_conv.im2col_plane = f32_im2col_plane_scalar;
  t->f32_conv.gather_even = f32_gather_even_scalar;
  t->f32_conv.col2im_plane_add = f32_col2im_plane_add_scalar;
  t->f32_conv.depthwise = {f32_depthwise_taps_scalar, nullptr, f32_deinterleave2_scalar};
  // No small-patch, direct or Winograd kernel: the plans take im2col + GEMM.
  t->f32_pool.max_2x2_row = f32_maxpool2d_2x2_row_scalar;
  t->f32_pool.max_taps = f32_max_taps_scalar;
  t->f32_pool.avg_rows = f32_avg_rows_scalar;
  t->f32_norm = {f32_norm_moments_scalar, f32_norm_row_scalar, f32_scale_shift_row_scalar};
  t->f32_math.unary = f32_unary_scalar;
  t->f32_math.reduce_rows = f32_reduce_rows_scalar;
  t->f32_compare = {f32_compare_row_scalar, f32_classify_scalar, f32_where_row_scalar};
  t->f32_resize.gather_row = f32_resize_gather_row_scalar;
  t->f32_resize.double_row = f32_resize_double_row_scalar;
  t->f32_resize.taps_row = f32_resize_taps_row_scalar;
  t->f32_resize.blend_rows = f32_resize_blend_rows_scalar;
  t->s8_conv.quantize_u8_row = quantize_u8_row_scalar;
  t->s8_conv.dequantize_u8_row = dequantize_u8_row_scalar;
  t->s8_conv.max_pool_u8_run = max_pool_u8_run_scalar;
  t->s8_conv.transpose_u8 = transpose_u8_scalar;
  t->s8_conv.add_u8_row = add_u8_row_scalar;
  t->s8_conv.lookup_u8_row = lookup_u8_row_scalar;
  t->s8_conv.affine_u8_row = affine_u8_row_scalar;
  t->s8_conv.mul_u8_row = mul_u8_row_scalar;
  t->s8_conv.depthwise_run = s8_depthwise_run_scalar;
}

void fill_dispatch_avx2(DispatchTable* t) {
  fill_f32_gemm_avx2(t);
  fill_s8_gemm_avx2(t);
  fill_f32_spmm_avx2(t);
  fill_f32_nm_spmm_avx2(t);
  fill_f32_sparse_conv_avx2(t);
  fill_s8_sparse_avx2(t);
  t->f32_conv.im2col_plane = f32_im2col_plane_avx2;
  t->f32_conv.gather_even = f32_gather_even_avx2;
  t->f32_conv.col2im_plane_add = f32_col2im_plane_add_avx2;
  t->f32_conv.depthwise = {f32_depthwise_taps_avx2, nullptr, f32_deinterleave2_avx2, f32_depthwise_block_avx2, 8};
  t->f32_conv.depthwise.stride2_rows = f32_depthwise_stride2_rows_avx2;
  t->f32_conv.small_conv_image = small_conv_image_avx2;
  t->f32_conv.small_conv_max_pool_image = small_conv_max_pool_image_avx2;
  t->f32_pool.max_2x2_row = f32_maxpool2d_2x2_row_avx2;
  t->f32_pool.max_taps = f32_max_taps_avx2;
  t->f32_pool.avg_rows = f32_avg_rows_avx2;
  t->f32_pool.max_channel_block = f32_max_pool_block_avx2;
  t->f32_pool.block_lanes = 8;
  t->f32_norm = {f32_norm_moments_avx2, f32_norm_row_avx2, f32_scale_shift_row_avx2};
  t->f32_math.unary = f32_unary_avx2;
  t->f32_math.reduce_rows = f32_reduce_rows_avx2;
  t->f32_compare = {f32_compare_row_avx2, f32_classify_avx2, f32_where_row_avx2};
  t->f32_resize.gather_row = f32_resize_gather_row_avx2;
  t->f32_resize.double_row = f32_resize_double_row_avx2;
  t->f32_resize.taps_row = f32_resize_taps_row_avx2;
  t->f32_resize.blend_rows = f32_resize_blend_rows_avx2;
  t->s8_conv.quantize_u8_row = quantize_u8_row_avx2;
  t->s8_conv.dequantize_u8_row = dequantize_u8_row_avx2;
  t->s8_conv.max_pool_u8_run = max_pool_u8_run_avx2;
  t->s8_conv.transpose_u8 = transpose_u8_avx2;
  t->s8_conv.add_u8_row = add_u8_row_avx2;
  t->s8_conv.lookup_u8_row = lookup_u8_row_avx2;
  t->s8_conv.affine_u8_row = affine_u8_row_avx2;
  t->s8_conv.mul_u8_row = mul_u8_row_avx2;
  t->s8_conv.depthwise_run = s8_depthwise_run_avx2;
  // AVX-VNNI is checked on its own (Alder Lake has it without AVX-512); the AVX-512 tables keep
  // it until VNNI replaces it with the EVEX form.
  if (cpu_features().avxvnni) fill_s8_grouped_avxvnni(t);
}

void fill_dispatch_avx512(DispatchTable* t) {
  fill_f32_gemm_avx512(t);
  fill_s8_gemm_avx512(t);
  fill_f32_spmm_avx512(t);
  fill_f32_nm_spmm_avx512(t);
  fill_f32_sparse_conv_avx512(t);
  // The sparse int8 kernels keep their AVX2 ones (exact emulation, or AVX-VNNI): VNNI is the
  // level that adds zmm ones.
  t->f32_conv.im2col_plane = f32_im2col_plane_avx512;
  t->f32_conv.gather_even = f32_gather_even_avx512;
  t->f32_conv.col2im_plane_add = f32_col2im_plane_add_avx512;
  t->f32_conv.depthwise = {f32_depthwise_taps_avx512, f32_depthwise_rows_avx512, f32_deinterleave2_avx512,
                         f32_depthwise_block_avx512, 16};
  t->f32_conv.depthwise.stride2_rows = f32_depthwise_stride2_rows_avx512;
  t->f32_conv.small_conv_image = small_conv_image_avx512;
  t->f32_conv.small_conv_max_pool_image = small_conv_max_pool_image_avx512;
  F32DirectConvKernels& d = t->f32_conv.direct;
  d.rows = direct_conv_rows_avx512;
  d.nhwc_to_nchw = nhwc_to_nchw_avx512;
  d.nchw_to_nhwc = nchw_to_nhwc_avx512;
  d.max_pool_rows = nhwc_max_pool_rows_avx512;
  d.column_sums = nhwc_column_sums_avx512;
  d.weight_rows = direct_conv_weight_rows_avx512;
  t->f32_conv.winograd_image = winograd_image_avx512;
  t->f32_conv.winograd_stage = winograd_stage_avx512;
  t->f32_conv.winograd_bands = winograd_bands_avx512;
  t->f32_conv.winograd_group = winograd_group_avx512;
  t->f32_pool.max_2x2_row = f32_maxpool2d_2x2_row_avx512;
  t->f32_pool.max_taps = f32_max_taps_avx512;
  t->f32_pool.avg_rows = f32_avg_rows_avx512;
  t->f32_pool.max_channel_block = f32_max_pool_block_avx512;
  t->f32_pool.block_lanes = 16;
  t->f32_norm = {f32_norm_moments_avx512, f32_norm_row_avx512, f32_scale_shift_row_avx512};
  t->f32_math.unary = f32_unary_avx512;
  t->f32_math.reduce_rows = f32_reduce_rows_avx512;
  t->f32_compare = {f32_compare_row_avx512, f32_classify_avx512, f32_where_row_avx512};
  t->s8_conv.quantize_u8_row = quantize_u8_row_avx512;
  t->s8_conv.dequantize_u8_row = dequantize_u8_row_avx512;
  t->s8_conv.max_pool_u8_run = max_pool_u8_run_avx512;
  t->s8_conv.add_u8_row = add_u8_row_avx512;
  t->s8_conv.lookup_u8_row = lookup_u8_row_avx512;
  t->s8_conv.affine_u8_row = affine_u8_row_avx512;
  t->s8_conv.mul_u8_row = mul_u8_row_avx512;
  t->s8_conv.depthwise_run = s8_depthwise_run_avx512;
  // The resize rows keep their AVX2 kernels (memory-bound).
}

// VNNI only adds int8 dot products: the fp32 families keep the AVX-512 kernels; the int8 GEMM
// and the depthwise run kernel switch to vpdpbusd and the small int8 conv + pool kernel, the
// grouped convolution kernel and the 1x1 kernel into float planes appear.
void fill_dispatch_avx512vnni(DispatchTable* t) {
  fill_s8_gemm_avx512vnni(t);
  fill_s8_sparse_avx512vnni(t);
  t->s8_conv.small_conv_pool = s8_small_conv_pool_avx512vnni;
  t->s8_conv.depthwise_run = s8_depthwise_run_avx512vnni;
  t->s8_conv.grouped_run_u8 = s8_grouped_run_u8_avx512vnni;
  t->s8_conv.planes_run = s8_planes_run_avx512vnni;
  // VBMI is checked on its own: not every VNNI CPU has it. The AVX-512 table keeps the nibble
  // lookup, so both stay tested where VBMI is present.
  if (cpu_features().avx512vbmi) t->s8_conv.lookup_u8_row = lookup_u8_row_avx512vbmi;
}

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

const DispatchTable* dispatch_for(Isa isa) {
  if (isa > best_isa()) return nullptr;
  return &tables().by_isa[static_cast<int>(isa)];
}

Isa active_isa() { return dispatch().isa; }

bool set_active_isa(Isa isa) {
  if (isa > best_isa()) return false;
  Tables& t = tables();
  t.active.store(&t.by_isa[static_cast<int>(isa)], std::memory_order_release);
  return true;
}

const std::string& isa_override_error() { return tables().override_error; }

}  // namespace kiln
