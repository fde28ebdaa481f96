/** Graph op type → lowering function. */
import type { LowerFn } from './context.js';
import { lowerConv, lowerConvTranspose } from './conv.js';
import { lowerBinary, lowerSum, lowerUnary } from './elementwise.js';
import { lowerGemm, lowerMatMul } from './gemm.js';
import { lowerConcat, lowerFlatten, lowerIdentity, lowerPad, lowerReshape, lowerSqueeze, lowerTranspose, lowerUnsqueeze } from './layout.js';
import { lowerBatchNorm, lowerGlobalPool, lowerLrn, lowerPool } from './pool.js';
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
  MaxPool: lowerPool,
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
  Flatten: lowerFlatten,
  Reshape: lowerReshape,
  Squeeze: lowerSqueeze,
  Unsqueeze: lowerUnsqueeze,
  Identity: lowerIdentity,
  Dropout: lowerIdentity,
  Transpose: lowerTranspose,
  Softmax: lowerSoftmax,
  LogSoftmax: lowerSoftmax,
  Pad: lowerPad,
};

/** Graph op types the runtime executes. */
export const SUPPORTED_OPS: readonly string[] = Object.keys(LOWERINGS);
