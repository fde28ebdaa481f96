/**
 * The acceptance subset of issue 14: node tests whose operator Kiln supports today or the issue
 * names. Fixed here (not read from the runtime's operator list) so the measure does not move as
 * operators are added.
 */

/** Operators Kiln's runtime executed when the issue was written (src/onnx/supported-ops.ts then). */
const RUNTIME_OPS_AT_ISSUE = [
  'Conv', 'ConvTranspose', 'Gemm', 'MatMul',
  'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh',
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LRN', 'BatchNormalization',
  'Add', 'Sub', 'Mul', 'Div', 'Sum',
  'Concat', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Transpose',
  'Softmax', 'LogSoftmax', 'Pad', 'Identity', 'Dropout',
];

/**
 * Operators import already handled then without a runtime kernel: folded on constants
 * (src/graph/constant-folding.ts FOLDABLE_OPS) or mapped from quantized forms (src/onnx/import-quant.ts).
 */
const IMPORTED_OPS_AT_ISSUE = [
  'Constant', 'ConstantOfShape', 'Shape', 'Gather', 'Cast', 'Slice', 'Neg', 'Sqrt', 'Exp',
  'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger',
];

/** Operators the issue names beyond those: the other normalizations, the reductions, data movement. */
const NAMED_BY_ISSUE = [
  'InstanceNormalization', 'LayerNormalization', 'GroupNormalization',
  'ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2',
  'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare',
  'Resize', 'Split', 'Expand', 'Tile', 'Where',
];

/** Every operator of the acceptance subset. */
export const ACCEPTANCE_OPS: ReadonlySet<string> = new Set([...RUNTIME_OPS_AT_ISSUE, ...IMPORTED_OPS_AT_ISSUE, ...NAMED_BY_ISSUE]);

/** Whether a test of operator `op` (its `_expanded` variants included) is in the acceptance subset. */
export function inAcceptanceSubset(op: string): boolean {
  return ACCEPTANCE_OPS.has(op);
}
