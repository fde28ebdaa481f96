/**
 * The ONNX operators Kiln's runtime executes (in canonical form, see src/graph/ir.ts). Import
 * keeps only these after constant folding; any other operator left in the graph is reported.
 */
export const RUNTIME_OPS: ReadonlySet<string> = new Set([
  'Conv', 'ConvTranspose', 'Gemm', 'MatMul',
  'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh',
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LRN', 'BatchNormalization',
  'LayerNormalization', 'InstanceNormalization', 'GroupNormalization',
  'Add', 'Sub', 'Mul', 'Div', 'Sum',
  'Abs', 'Neg', 'Sqrt', 'Exp', 'Log', 'Reciprocal', 'Floor', 'Ceil', 'Erf', 'Softplus', 'Softsign',
  'Round',
  'Elu', 'Selu', 'Celu', 'Mish', 'Gelu', 'ThresholdedRelu', 'PRelu', 'Max', 'Min', 'Pow',
  'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSum', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSumExp',
  'ReduceLogSum',
  'Concat', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Transpose',
  'Softmax', 'LogSoftmax', 'Pad', 'Identity', 'Dropout',
  'Resize', 'Upsample', 'Slice', 'Split', 'Gather', 'Expand', 'Tile', 'DepthToSpace', 'SpaceToDepth',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf', 'Where',
  'Cast', // to FLOAT or BOOL (import refuses the other types on run-time values)
]);

/** The ONNX opsets (default domain) import accepts; versions are judged per op in op-versions.ts. */
export { OLDEST_ONNX_OPSET as MIN_OPSET, NEWEST_ONNX_OPSET as MAX_OPSET } from './op-versions.js';
/**
 * Operators whose values are int64 indices: the runtime carries float32 and bool values (and uint8
 * inside int8 regions) only, so they are refused with this reason.
 */
const NON_FLOAT_REASONS: Readonly<Record<string, string>> = {
  ArgMax: 'its int64 indices are not a float32 value (the runtime carries float32 values only)',
  ArgMin: 'its int64 indices are not a float32 value (the runtime carries float32 values only)',
};

/** Why import refuses an operator it has no form for ('not implemented', or a precise reason). */
export function notImplementedReason(op: string): string {
  return NON_FLOAT_REASONS[op] ?? 'not implemented';
}

