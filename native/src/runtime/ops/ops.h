// Factories of the plan's steps, one per op family (one file each in this folder).
#pragma once
#include <memory>

#include "runtime/step.h"

namespace kiln {
namespace runtime {

std::unique_ptr<PlanStep> make_conv(const StepContext& ctx);            // conv.cc
std::unique_ptr<PlanStep> make_conv_transpose(const StepContext& ctx);  // conv-transpose.cc
std::unique_ptr<PlanStep> make_gemm(const StepContext& ctx);            // gemm.cc
std::unique_ptr<PlanStep> make_matmul(const StepContext& ctx);          // matmul.cc
std::unique_ptr<PlanStep> make_unary(const StepContext& ctx);           // unary.cc (Relu, Sigmoid, ...)
std::unique_ptr<PlanStep> make_copy(const StepContext& ctx);            // unary.cc
// A plain copy of one value (the planner uses it where a view cannot alias its input).
std::unique_ptr<PlanStep> make_copy_step(size_t floats_per_image);      // unary.cc
std::unique_ptr<PlanStep> make_pool(const StepContext& ctx);            // pool.cc (MaxPool, AveragePool)
std::unique_ptr<PlanStep> make_global_pool(const StepContext& ctx);     // global-pool.cc
std::unique_ptr<PlanStep> make_reduce(const StepContext& ctx);          // reduce.cc (ReduceMean, ReduceMax, ...)
std::unique_ptr<PlanStep> make_arg_reduce(const StepContext& ctx);      // arg-reduce.cc (ArgMax, ArgMin)
std::unique_ptr<PlanStep> make_lrn(const StepContext& ctx);             // lrn.cc
std::unique_ptr<PlanStep> make_batch_norm(const StepContext& ctx);      // batch-norm.cc
std::unique_ptr<PlanStep> make_batch_norm_u8(const StepContext& ctx);   // batch-norm.cc
std::unique_ptr<PlanStep> make_layer_norm(const StepContext& ctx);      // normalization.cc
std::unique_ptr<PlanStep> make_group_norm(const StepContext& ctx);      // normalization.cc (+ InstanceNormalization)
std::unique_ptr<PlanStep> make_binary(const StepContext& ctx);          // binary.cc (Add, Sub, Mul, Div)
std::unique_ptr<PlanStep> make_sum(const StepContext& ctx);             // binary.cc
std::unique_ptr<PlanStep> make_concat(const StepContext& ctx);          // concat.cc
std::unique_ptr<PlanStep> make_transpose(const StepContext& ctx);       // transpose.cc
std::unique_ptr<PlanStep> make_transpose_nd_u8(const StepContext& ctx);  // transpose.cc
std::unique_ptr<PlanStep> make_channel_shuffle_u8(const StepContext& ctx);  // transpose.cc
std::unique_ptr<PlanStep> make_softmax(const StepContext& ctx);         // softmax.cc (+ LogSoftmax)
std::unique_ptr<PlanStep> make_pad(const StepContext& ctx);             // pad.cc
std::unique_ptr<PlanStep> make_resize(const StepContext& ctx);          // resize.cc (Resize, Upsample)
std::unique_ptr<PlanStep> make_slice(const StepContext& ctx);           // slice.cc
std::unique_ptr<PlanStep> make_gather(const StepContext& ctx);          // slice.cc
std::unique_ptr<PlanStep> make_expand(const StepContext& ctx);          // slice.cc
std::unique_ptr<PlanStep> make_tile(const StepContext& ctx);            // slice.cc
// Bool values (PlanDType::kBool): comparisons, And / Or / Xor, Not / IsNaN / IsInf / Cast, Where.
std::unique_ptr<PlanStep> make_compare(const StepContext& ctx);         // compare.cc (+ And, Or, Xor)
std::unique_ptr<PlanStep> make_bool_unary(const StepContext& ctx);      // compare.cc (Not, IsNaN, IsInf, Cast)
std::unique_ptr<PlanStep> make_where(const StepContext& ctx);           // compare.cc
// int8 steps on uint8 values (NHWC for images; int8 activations arrive as uint8 with the sign bit
// flipped, so one set of kernels serves both).
std::unique_ptr<PlanStep> make_quantize(const StepContext& ctx);        // quantize.cc
std::unique_ptr<PlanStep> make_dequantize(const StepContext& ctx);      // quantize.cc
std::unique_ptr<PlanStep> make_transpose_u8(const StepContext& ctx);    // quantize.cc
std::unique_ptr<PlanStep> make_qlinear_conv(const StepContext& ctx);    // qlinear-conv.cc
std::unique_ptr<PlanStep> make_qlinear_gemm(const StepContext& ctx);    // qlinear-gemm.cc
std::unique_ptr<PlanStep> make_dynamic_qgemm(const StepContext& ctx);   // qlinear-gemm.cc
std::unique_ptr<PlanStep> make_qlinear_add(const StepContext& ctx);     // qlinear-add.cc
std::unique_ptr<PlanStep> make_max_pool_u8(const StepContext& ctx);     // max-pool-u8.cc
std::unique_ptr<PlanStep> make_avg_pool_u8(const StepContext& ctx);     // avg-pool-u8.cc (QLinearAveragePool)
std::unique_ptr<PlanStep> make_resize_u8(const StepContext& ctx);       // resize.cc (nearest)
std::unique_ptr<PlanStep> make_slice_u8(const StepContext& ctx);        // slice.cc
std::unique_ptr<PlanStep> make_concat_u8(const StepContext& ctx);       // concat.cc (QLinearConcat)
std::unique_ptr<PlanStep> make_lookup_u8(const StepContext& ctx);       // lookup-u8.cc (QLinearLookup)
std::unique_ptr<PlanStep> make_qlinear_mul(const StepContext& ctx);     // qlinear-mul.cc
std::unique_ptr<PlanStep> make_global_avg_pool_u8(const StepContext& ctx);  // global-avg-pool-u8.cc (QLinearGlobalAveragePool)

}  // namespace runtime
}  // namespace kiln
