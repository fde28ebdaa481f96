/**
 * The ONNX operators Kiln's runtime executes (in canonical form, see src/graph/ir.ts). Import
 * keeps only these after constant folding; any other operator left in the graph is reported.
 */
export const RUNTIME_OPS: ReadonlySet<string> = new Set([
  'Conv', 'ConvTranspose', 'Gemm', 'MatMul',
  'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh',
  'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LRN', 'BatchNormalization',
  'Add', 'Sub', 'Mul', 'Div', 'Sum',
  'Concat', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Transpose',
  'Softmax', 'LogSoftmax', 'Pad', 'Identity', 'Dropout',
  'Resize', 'Upsample', 'Slice', 'Split', 'Gather', 'Expand', 'Tile', 'DepthToSpace', 'SpaceToDepth',
]);

/** The ONNX opsets (default domain) import accepts. */
export const MIN_OPSET = 7;
export const MAX_OPSET = 22;
