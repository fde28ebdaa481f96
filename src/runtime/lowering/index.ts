/** Graph op type → lowering function. */
import type { LowerFn } from './context.js';
import { lowerConv, lowerConvTranspose } from './conv.js';
import { lowerBinary, lowerSum, lowerUnary } from './elementwise.js';
import { lowerGemm, lowerMatMul } from './gemm.js';
import { lowerDepthToSpace, lowerExpand, lowerGather, lowerTile } from './data.js';
import { lowerConcat, lowerPad, lowerSqueeze, lowerTranspose, lowerUnsqueeze } from './layout.js';
import { lowerBatchNorm, lowerGlobalPool, lowerLrn, lowerPool } from './pool.js';
import { QUANT_LOWERINGS } from './quant.js';
import { lowerSoftmax } from './softmax.js';

export const LOWERINGS: Readonly<Record<string, LowerFn>> = {
  Conv: lowerConv,
  ConvTranspose: lowerConvTranspose,
  Gemm: lowerGemm,
  MatMul: lowerMatMul,
  Relu: lowerUnary,
  LeakyRelu: lowerUnary,
  Clip: lowerUnary,
  Sigmoid: lowerUnary,
  HardSigmoid: lowerUnary,
  HardSwish: lowerUnary,
  Tanh: lowerUnary,
  AveragePool: lowerPool,
  GlobalAveragePool: lowerGlobalPool,
  GlobalMaxPool: lowerGlobalPool,
  LRN: lowerLrn,
  BatchNormalization: lowerBatchNorm,
  Add: lowerBinary,
  Sub: lowerBinary,
  Mul: lowerBinary,
  Div: lowerBinary,
  Sum: lowerSum,
  Concat: lowerConcat,
  Squeeze: lowerSqueeze,
  Unsqueeze: lowerUnsqueeze,
  Transpose: lowerTranspose,
  Softmax: lowerSoftmax,
  LogSoftmax: lowerSoftmax,
  Pad: lowerPad,
  Gather: lowerGather,
  Expand: lowerExpand,
  Tile: lowerTile,
  DepthToSpace: lowerDepthToSpace,
  SpaceToDepth: lowerDepthToSpace,
  // int8 ops, and MaxPool / Resize / Slice / Split / Flatten / Reshape / Identity / Dropout (float or quantized input)
  ...QUANT_LOWERINGS,
};

/** Graph op types the runtime executes. */
export const SUPPORTED_OPS: readonly string[] = Object.keys(LOWERINGS);
