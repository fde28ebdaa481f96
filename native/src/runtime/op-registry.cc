#include "runtime/op-registry.h"

#include <vector>

#include "runtime/ops/ops.h"

namespace kiln {
namespace runtime {
namespace {

const OpEntry kOps[] = {
    {"Conv", make_conv},
    {"ConvTranspose", make_conv_transpose},
    {"Gemm", make_gemm},
    {"MatMul", make_matmul},
    {"Relu", make_unary},
    {"LeakyRelu", make_unary},
    {"Clip", make_unary},
    {"Sigmoid", make_unary},
    {"Silu", make_unary},
    {"HardSigmoid", make_unary},
    {"HardSwish", make_unary},
    {"Tanh", make_unary},
    {"Abs", make_unary},
    {"Neg", make_unary},
    {"Sqrt", make_unary},
    {"Exp", make_unary},
    {"Log", make_unary},
    {"Reciprocal", make_unary},
    {"Floor", make_unary},
    {"Round", make_unary},
    {"Ceil", make_unary},
    {"Erf", make_unary},
    {"Softplus", make_unary},
    {"Softsign", make_unary},
    {"Elu", make_unary},
    {"Selu", make_unary},
    {"Celu", make_unary},
    {"Mish", make_unary},
    {"Gelu", make_unary},
    {"ThresholdedRelu", make_unary},
    {"Copy", make_copy},
    {"MaxPool", make_pool},
    {"AveragePool", make_pool},
    {"GlobalAveragePool", make_global_pool},
    {"GlobalMaxPool", make_global_pool},
    {"ReduceMean", make_reduce},
    {"ReduceMax", make_reduce},
    {"ReduceMin", make_reduce},
    {"ReduceSum", make_reduce},
    {"ReduceProd", make_reduce},
    {"ReduceL1", make_reduce},
    {"ReduceL2", make_reduce},
    {"ReduceSumSquare", make_reduce},
    {"ReduceLogSumExp", make_reduce},
    {"ReduceLogSum", make_reduce},
    {"ArgMax", make_arg_reduce},
    {"ArgMin", make_arg_reduce},
    {"LRN", make_lrn},
    {"BatchNormalization", make_batch_norm},
    {"LayerNormalization", make_layer_norm},
    {"GroupNormalization", make_group_norm},
    {"Add", make_binary},
    {"Sub", make_binary},
    {"Mul", make_binary},
    {"Div", make_binary},
    {"Max", make_binary},
    {"Min", make_binary},
    {"Pow", make_binary},
    {"PRelu", make_binary},
    {"Sum", make_sum},
    {"Concat", make_concat},
    {"Transpose", make_transpose},
    {"Softmax", make_softmax},
    {"LogSoftmax", make_softmax},
    {"Pad", make_pad},
    {"Resize", make_resize},
    {"Slice", make_slice},
    {"Gather", make_gather},
    {"Expand", make_expand},
    {"Tile", make_tile},
    {"Equal", make_compare, true},
    {"Less", make_compare, true},
    {"LessOrEqual", make_compare, true},
    {"Greater", make_compare, true},
    {"GreaterOrEqual", make_compare, true},
    {"And", make_compare, true},
    {"Or", make_compare, true},
    {"Xor", make_compare, true},
    {"Not", make_bool_unary, true},
    {"IsNaN", make_bool_unary, true},
    {"IsInf", make_bool_unary, true},
    {"Cast", make_bool_unary, true},
    {"Where", make_where, true},
    {"QuantizeLinear", make_quantize, true},
    {"DequantizeLinear", make_dequantize, true},
    {"TransposeU8", make_transpose_u8, true},
    {"TransposeNdU8", make_transpose_nd_u8, true},
    {"ChannelShuffleU8", make_channel_shuffle_u8, true},
    {"QLinearConv", make_qlinear_conv, true},
    {"QLinearGemm", make_qlinear_gemm, true},
    {"DynamicQGemm", make_dynamic_qgemm, true},
    {"QLinearAdd", make_qlinear_add, true},
    {"MaxPoolU8", make_max_pool_u8, true},
    {"AvgPoolU8", make_avg_pool_u8, true},
    {"ResizeU8", make_resize_u8, true},
    {"SliceU8", make_slice_u8, true},
    {"ConcatU8", make_concat_u8, true},
    {"LookupU8", make_lookup_u8, true},
    {"QLinearMul", make_qlinear_mul, true},
    {"BatchNormU8", make_batch_norm_u8, true},
    {"GlobalAvgPoolU8", make_global_avg_pool_u8, true},
    {"Reshape", nullptr},
    {"Flatten", nullptr},
    {"Squeeze", nullptr},
    {"Unsqueeze", nullptr},
    {"Identity", nullptr},
};

}  // namespace

const OpEntry* find_op(const std::string& op) {
  for (const OpEntry& e : kOps) {
    if (op == e.name) return &e;
  }
  return nullptr;
}

}  // namespace runtime

const std::vector<std::string>& plan_ops() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const runtime::OpEntry& e : runtime::kOps) v.push_back(e.name);
    return v;
  }();
  return names;
}

}  // namespace kiln
