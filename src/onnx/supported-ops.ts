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
  'Concat', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Transpose',
  'Softmax', 'LogSoftmax', 'Pad', 'Identity', 'Dropout',
]);

/** The ONNX opsets (default domain) import accepts; versions are judged per op in op-versions.ts. */
export { OLDEST_ONNX_OPSET as MIN_OPSET, NEWEST_ONNX_OPSET as MAX_OPSET } from './op-versions.js';
