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
  'ArgMax', 'ArgMin', // float32 indices of exact integers; int64 only where they leave the model (edge-types.ts)
  'Concat', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Transpose',
  'Softmax', 'LogSoftmax', 'Pad', 'Identity', 'Dropout',
  'Resize', 'Upsample', 'Slice', 'Split', 'Gather', 'Expand', 'Tile', 'DepthToSpace', 'SpaceToDepth',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf', 'Where',
  'Cast', // to FLOAT or BOOL (import refuses the other types on run-time values)
]);

/** The ONNX opsets (default domain) import accepts; versions are judged per op in op-versions.ts. */
export { OLDEST_ONNX_OPSET as MIN_OPSET, NEWEST_ONNX_OPSET as MAX_OPSET } from './op-versions.js';
/**
 * Operators refused with a precise reason rather than 'not implemented' (none at present: ArgMax
 * and ArgMin, once refused for their int64 indices, run with float32 integer indices).
 */
const NON_FLOAT_REASONS: Readonly<Record<string, string>> = {};

/** Why import refuses an operator it has no form for ('not implemented', or a precise reason). */
export function notImplementedReason(op: string): string {
  return NON_FLOAT_REASONS[op] ?? 'not implemented';
}

