/** Graph op type → lowering function. */
import type { LowerFn } from './context.js';
import { lowerCast, lowerClassify, lowerCompare, lowerNot, lowerWhere } from './compare.js';
import { lowerConv, lowerConvTranspose } from './conv.js';
import { lowerBinary, lowerSum, lowerUnary, lowerVariadic } from './elementwise.js';
import { lowerGemm, lowerMatMul } from './gemm.js';
import { lowerGroupNorm, lowerLayerNorm } from './norm.js';
import { lowerDepthToSpace, lowerExpand, lowerGather, lowerTile } from './data.js';
import { lowerConcat, lowerPad, lowerSqueeze, lowerUnsqueeze } from './layout.js';
import { lowerBatchNorm, lowerGlobalPool, lowerLrn, lowerPool } from './pool.js';
import { QUANT_LOWERINGS } from './quant.js';
import { lowerArgReduce, lowerReduce } from './reduce.js';
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
  Abs: lowerUnary,
  Neg: lowerUnary,
  Sqrt: lowerUnary,
  Exp: lowerUnary,
  Log: lowerUnary,
  Reciprocal: lowerUnary,
  Floor: lowerUnary,
  Round: lowerUnary,
  Ceil: lowerUnary,
  Erf: lowerUnary,
  Softplus: lowerUnary,
  Softsign: lowerUnary,
  Elu: lowerUnary,
  Selu: lowerUnary,
  Celu: lowerUnary,
  Mish: lowerUnary,
  Gelu: lowerUnary,
  ThresholdedRelu: lowerUnary,
  AveragePool: lowerPool,
  GlobalAveragePool: lowerGlobalPool,
  GlobalMaxPool: lowerGlobalPool,
  ReduceMean: lowerReduce,
  ReduceMax: lowerReduce,
  ReduceMin: lowerReduce,
  ReduceSum: lowerReduce,
  ReduceProd: lowerReduce,
  ReduceL1: lowerReduce,
  ReduceL2: lowerReduce,
  ReduceSumSquare: lowerReduce,
  ReduceLogSumExp: lowerReduce,
  ReduceLogSum: lowerReduce,
  ArgMax: lowerArgReduce,
  ArgMin: lowerArgReduce,
  LRN: lowerLrn,
  BatchNormalization: lowerBatchNorm,
  LayerNormalization: lowerLayerNorm,
  InstanceNormalization: lowerGroupNorm,
  GroupNormalization: lowerGroupNorm,
  Add: lowerBinary,
  Sub: lowerBinary,
  Mul: lowerBinary,
  Div: lowerBinary,
  Max: lowerVariadic,
  Min: lowerVariadic,
  Pow: lowerBinary,
  PRelu: lowerBinary,
  Sum: lowerSum,
  Concat: lowerConcat,
  Squeeze: lowerSqueeze,
  Unsqueeze: lowerUnsqueeze,
  Softmax: lowerSoftmax,
  LogSoftmax: lowerSoftmax,
  Pad: lowerPad,
  Gather: lowerGather,
  Expand: lowerExpand,
  Tile: lowerTile,
  DepthToSpace: lowerDepthToSpace,
  SpaceToDepth: lowerDepthToSpace,
  Equal: lowerCompare,
  Less: lowerCompare,
  LessOrEqual: lowerCompare,
  Greater: lowerCompare,
  GreaterOrEqual: lowerCompare,
  And: lowerCompare,
  Or: lowerCompare,
  Xor: lowerCompare,
  Not: lowerNot,
  IsNaN: lowerClassify,
  IsInf: lowerClassify,
  Cast: lowerCast,
  Where: lowerWhere,
  // int8 ops, and MaxPool / Resize / Slice / Split / Flatten / Reshape / Identity / Dropout (float or quantized input)
  ...QUANT_LOWERINGS,
};

/** Graph op types the runtime executes. */
export const SUPPORTED_OPS: readonly string[] = Object.keys(LOWERINGS);
