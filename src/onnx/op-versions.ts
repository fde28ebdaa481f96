/**
 * Operator versions: which version of an operator a node of a model means, and whether Kiln
 * implements that version's semantics.
 *
 * A model names one opset per domain; each node then means the newest version of its operator
 * defined at or below that opset (its `since_version`). Most operators are untouched by most
 * opsets (ai.onnx 23-25 only widened type lists for the ops Kiln runs, adding float8 / 4-bit /
 * 2-bit types Kiln never meets as float32 or int8), so a model is judged per node, not refused
 * for its opset number.
 */

/** The newest default-domain opset of the ONNX release Kiln follows (onnx 1.23.0). */
export const NEWEST_ONNX_OPSET = 28;

/**
 * The oldest default-domain opset import accepts. Opsets below 7 are judged per node like the
 * rest: the versions they resolve to that changed semantics since (Add-1's `broadcast`, Relu-1's
 * `consumed_inputs`, Cast-1's string `to`, ...) are not in IMPLEMENTED, so only nodes whose
 * operator has meant the same since then import.
 */
export const OLDEST_ONNX_OPSET = 1;

/** The opset whose versions Kiln normalised before versions were judged per operator. */
const BASELINE_OPSET = 7;

/**
 * Every default-domain operator of onnx 1.23.0 with its since_version values (generated from
 * the ONNX_OPERATOR_SET_SCHEMA declarations of onnx/defs at commit 6be0677fc22e).
 */
const ONNX_HISTORY: Readonly<Record<string, string>> = {
  Abs: '1 6 13', Acos: '7 22', Acosh: '9 22', Add: '1 6 7 13 14', AffineGrid: '20', And: '1 7',
  ArgMax: '1 11 12 13', ArgMin: '1 11 12 13', Asin: '7 22', Asinh: '9 22', Atan: '7 22', Atanh: '9 22',
  Attention: '23 24', AveragePool: '1 7 10 11 19 22', BatchNormalization: '1 6 7 9 14 15',
  Bernoulli: '15 22', BitCast: '26', BitShift: '11', BitwiseAnd: '18', BitwiseNot: '18', BitwiseOr: '18',
  BitwiseXor: '18', BlackmanWindow: '17', Cast: '1 6 9 13 19 21 23 24 25', CastLike: '15 19 21 23 24 25',
  CausalConvWithState: '27', Ceil: '1 6 13', Celu: '12 28', CenterCropPad: '18', Clip: '1 6 11 12 13',
  Col2Im: '18', Compress: '9 11', Concat: '1 4 11 13', ConcatFromSequence: '11',
  Constant: '1 9 11 12 13 19 21 23 24 25', ConstantOfShape: '9 20 21 23 24 25', Conv: '1 11 22',
  ConvInteger: '10', ConvTranspose: '1 11 22', Cos: '7 22', Cosh: '9 22', CumProd: '26', CumSum: '11 14',
  DFT: '17 20', DeformConv: '19 22', DepthToSpace: '1 11 13', DequantizeLinear: '10 13 19 21 23 24 25',
  Det: '11 22', Div: '1 6 7 13 14', Dropout: '1 6 7 10 12 13 22', DynamicQuantizeLinear: '11', Einsum: '12',
  Elu: '1 6 22', Equal: '1 7 11 13 19', Erf: '9 13', Exp: '1 6 13', Expand: '8 13', EyeLike: '9 22',
  Flatten: '1 9 11 13 21 23 24 25', Floor: '1 6 13', GRU: '1 3 7 14 22', Gather: '1 11 13',
  GatherElements: '11 13', GatherND: '11 12 13', Gelu: '20', Gemm: '1 6 7 9 11 13',
  GlobalAveragePool: '1 22', GlobalLpPool: '1 2 22', GlobalMaxPool: '1 22', Greater: '1 7 9 13',
  GreaterOrEqual: '12 16', GridSample: '16 20 22', GroupNormalization: '18 21', HammingWindow: '17',
  HannWindow: '17', HardSigmoid: '1 6 22', HardSwish: '14 22', Hardmax: '1 11 13',
  Identity: '1 13 14 16 19 21 23 24 25', If: '1 11 13 16 19 21 23 24 25', ImageDecoder: '20',
  InstanceNormalization: '1 6 22', IsInf: '10 20', IsNaN: '9 13 20', LRN: '1 13', LSTM: '1 7 14 22',
  LayerNormalization: '17', LeakyRelu: '1 6 16', Less: '1 7 9 13', LessOrEqual: '12 16',
  LinearAttention: '27', Log: '1 6 13', LogSoftmax: '1 11 13', Loop: '1 11 13 16 19 21 23 24 25',
  LpNormalization: '1 22', LpPool: '1 2 11 18 22', MatMul: '1 9 13', MatMulInteger: '10', Max: '1 6 8 12 13',
  MaxPool: '1 8 10 11 12 22', MaxRoiPool: '1 22', MaxUnpool: '9 11 22', Mean: '1 6 8 13',
  MeanVarianceNormalization: '9 13', MelWeightMatrix: '17', Min: '1 6 8 12 13', Mish: '18 22', Mod: '10 13',
  Mul: '1 6 7 13 14', Multinomial: '7 22', Neg: '1 6 13', NegativeLogLikelihoodLoss: '12 13 22',
  NonMaxSuppression: '10 11', NonZero: '9 13', Not: '1', OneHot: '9 11', Optional: '15',
  OptionalGetElement: '15 18', OptionalHasElement: '15 18', Or: '1 7', PRelu: '1 6 7 9 16',
  Pad: '1 2 11 13 18 19 21 23 24 25', Pow: '1 7 12 13 15', QLinearConv: '10', QLinearMatMul: '10 21',
  QuantizeLinear: '10 13 19 21 23 24 25', RMSNormalization: '23', RNN: '1 7 14 22', RandomNormal: '1 22',
  RandomNormalLike: '1 22', RandomUniform: '1 22', RandomUniformLike: '1 22', Range: '11 27',
  Reciprocal: '1 6 13', ReduceL1: '1 11 13 18', ReduceL2: '1 11 13 18', ReduceLogSum: '1 11 13 18',
  ReduceLogSumExp: '1 11 13 18', ReduceMax: '1 11 12 13 18 20', ReduceMean: '1 11 13 18',
  ReduceMin: '1 11 12 13 18 20', ReduceProd: '1 11 13 18', ReduceSum: '1 11 13',
  ReduceSumSquare: '1 11 13 18', RegexFullMatch: '20', Relu: '1 6 13 14',
  Reshape: '1 5 13 14 19 21 23 24 25', Resize: '10 11 13 18 19', ReverseSequence: '10', RoiAlign: '10 16 22',
  RotaryEmbedding: '23', Round: '11 22', STFT: '17', Scan: '8 9 11 16 19 21 23 24 25', Scatter: '9 11',
  ScatterElements: '11 13 16 18', ScatterND: '11 13 16 18', Selu: '1 6 22', SequenceAt: '11',
  SequenceConstruct: '11', SequenceEmpty: '11', SequenceErase: '11', SequenceInsert: '11',
  SequenceLength: '11', SequenceMap: '17', Shape: '1 13 15 19 21 23 24 25', Shrink: '9', Sigmoid: '1 6 13',
  Sign: '9 13', Sin: '7 22', Sinh: '9 22', Size: '1 13 19 21 23 24 25', Slice: '1 10 11 13',
  Softmax: '1 11 13', SoftmaxCrossEntropyLoss: '12 13', Softplus: '1 22', Softsign: '1 22',
  SpaceToDepth: '1 13', Split: '1 2 11 13 18', SplitToSequence: '11 24', Sqrt: '1 6 13',
  Squeeze: '1 11 13 21 23 24 25', StringConcat: '20', StringNormalizer: '10', StringSplit: '20',
  Sub: '1 6 7 13 14', Sum: '1 6 8 13', SwiGLU: '28', Swish: '24', Tan: '7 22', Tanh: '1 6 13',
  TensorScatter: '24', TfIdfVectorizer: '9', ThresholdedRelu: '10 22', Tile: '1 6 13', TopK: '1 10 11 24',
  Transpose: '1 13 21 23 24 25', Trilu: '14', Unique: '11', Unsqueeze: '1 11 13 21 23 24 25',
  Upsample: '1 7 9 10', Where: '9 16', Xor: '1 7',
};

/**
 * For each operator Kiln imports, the versions whose semantics it implements (checked against
 * docs/Changelog.md of onnx 1.23.0: versions 23-25 of Cast, Constant, ConstantOfShape, Flatten,
 * Identity, Pad, Reshape, Shape, Squeeze, Transpose, Unsqueeze and the quantization ops grew
 * type lists only; QuantizeLinear-23's `precision` and DequantizeLinear-23's `output_dtype` are
 * checked per node by `unimplementedAttribute`). Versions a model of opset >= 7 cannot mean are
 * left out.
 */
const IMPLEMENTED: Readonly<Record<string, readonly number[]>> = {
  Conv: [1, 11, 22], ConvTranspose: [1, 11, 22], Gemm: [7, 9, 11, 13], MatMul: [1, 9, 13], Relu: [6, 13, 14],
  LeakyRelu: [6, 16], Clip: [6, 11, 12, 13], Sigmoid: [6, 13], HardSigmoid: [6, 22], HardSwish: [14, 22],
  Tanh: [6, 13], MaxPool: [1, 8, 10, 11, 12, 22], AveragePool: [7, 10, 11, 19, 22],
  GlobalAveragePool: [1, 22], GlobalMaxPool: [1, 22], LRN: [1, 13], BatchNormalization: [7, 9, 14, 15],
  Add: [7, 13, 14], Sub: [7, 13, 14], Mul: [7, 13, 14], Div: [7, 13, 14], Sum: [6, 8, 13],
  Concat: [4, 11, 13], Flatten: [1, 9, 11, 13, 21, 23, 24, 25], Reshape: [5, 13, 14, 19, 21, 23, 24, 25],
  Squeeze: [1, 11, 13, 21, 23, 24, 25], Unsqueeze: [1, 11, 13, 21, 23, 24, 25],
  Transpose: [1, 13, 21, 23, 24, 25], Softmax: [1, 11, 13], LogSoftmax: [1, 11, 13],
  Pad: [2, 11, 13, 18, 19, 21, 23, 24, 25], Identity: [1, 13, 14, 16, 19, 21, 23, 24, 25],
  Dropout: [7, 10, 12, 13, 22], Constant: [1, 9, 11, 12, 13, 19, 21, 23, 24, 25],
  ConstantOfShape: [9, 20, 21, 23, 24, 25], Shape: [1, 13, 15, 19, 21, 23, 24, 25], Gather: [1, 11, 13],
  Cast: [6, 9, 13, 19, 21, 23, 24, 25], Slice: [1, 10, 11, 13], Neg: [6, 13], Sqrt: [6, 13], Exp: [6, 13],
  QuantizeLinear: [10, 13, 19, 21, 23, 24, 25], DequantizeLinear: [10, 13, 19, 21, 23, 24, 25],
  DynamicQuantizeLinear: [11], QLinearConv: [10], QLinearMatMul: [10, 21], MatMulInteger: [10],
  ConvInteger: [10],
  LayerNormalization: [17], InstanceNormalization: [6, 22], GroupNormalization: [18, 21],
  Abs: [6, 13], Log: [6, 13], Reciprocal: [6, 13], Floor: [6, 13], Ceil: [6, 13], Erf: [9, 13],
  Round: [11, 22],
  Softplus: [1, 22], Softsign: [1, 22], Elu: [6, 22], Selu: [6, 22], Celu: [12], Mish: [18, 22], Gelu: [20],
  ThresholdedRelu: [10, 22], PRelu: [7, 9, 16], Max: [8, 12, 13], Min: [8, 12, 13], Pow: [7, 12, 13, 15],
  ReduceMean: [1, 11, 13, 18], ReduceMax: [1, 11, 12, 13, 18, 20], ReduceMin: [1, 11, 12, 13, 18, 20],
  ReduceSum: [1, 11, 13], ReduceProd: [1, 11, 13, 18], ReduceL1: [1, 11, 13, 18], ReduceL2: [1, 11, 13, 18],
  ReduceSumSquare: [1, 11, 13, 18], ReduceLogSumExp: [1, 11, 13, 18],
  ReduceLogSum: [1, 11, 13, 18],
  ArgMax: [1, 11, 12, 13], ArgMin: [1, 11, 12, 13],
  Resize: [10, 11, 13, 18, 19], Upsample: [7, 9, 10], Split: [2, 11, 13, 18], Expand: [8, 13], Tile: [6, 13],
  DepthToSpace: [1, 11, 13], SpaceToDepth: [1, 13],
  Equal: [7, 11, 13, 19], Less: [7, 9, 13], LessOrEqual: [12, 16], Greater: [7, 9, 13], GreaterOrEqual: [12, 16],
  And: [7], Or: [7], Xor: [7], Not: [1], IsNaN: [9, 13, 20], IsInf: [10, 20], Where: [9, 16],
  Size: [1, 13, 19, 21, 23, 24, 25],
  CastLike: [15, 19, 21, 23, 24, 25],
};

/**
 * Operators Kiln learnt to run without an IMPLEMENTED entry keep the range Kiln accepted before
 * versions were judged per operator: the versions of opsets 7 to 22.
 */
const UNLISTED_NEWEST = 22;

const historyCache = new Map<string, number[]>();

/** since_version values of a default-domain operator, ascending; undefined for an unknown op. */
function history(op: string): number[] | undefined {
  if (!Object.prototype.hasOwnProperty.call(ONNX_HISTORY, op)) return undefined;
  let versions = historyCache.get(op);
  if (versions === undefined) {
    versions = ONNX_HISTORY[op]!.split(' ').map(Number);
    historyCache.set(op, versions);
  }
  return versions;
}

/**
 * The version of a default-domain operator that a model of `opset` means (the newest
 * since_version at or below the opset); undefined for an operator ONNX does not define there.
 */
export function resolveOpVersion(op: string, opset: number): number | undefined {
  let resolved: number | undefined;
  for (const v of history(op) ?? []) if (v <= opset) resolved = v;
  return resolved;
}

/**
 * Why Kiln cannot run this version of a default-domain operator it knows, or undefined when it
 * implements it. `op` must be one Kiln runs or folds; unknown operators are reported elsewhere.
 */
export function unimplementedVersion(op: string, version: number): string | undefined {
  const implemented = IMPLEMENTED[op];
  if (implemented === undefined) {
    const oldest = resolveOpVersion(op, BASELINE_OPSET) ?? history(op)?.[0] ?? 1;
    return version >= oldest && version <= UNLISTED_NEWEST ? undefined : `Kiln implements ${op} versions ${oldest} to ${UNLISTED_NEWEST}`;
  }
  if (implemented.includes(version)) return undefined;
  return `Kiln implements ${op} versions ${implemented.join(', ')}`;
}

/**
 * Attributes a newer version added whose non-default values Kiln does not implement: the
 * quantization ops compute in float32 and produce float32 only.
 */
export function unimplementedAttribute(op: string, attrs: Readonly<Record<string, unknown>>): string | undefined {
  const FLOAT = 1;
  if (op === 'QuantizeLinear' && attrs.precision !== undefined && attrs.precision !== 0 && attrs.precision !== FLOAT) {
    return `precision ${String(attrs.precision)} (Kiln divides in float32)`;
  }
  if (op === 'DequantizeLinear' && attrs.output_dtype !== undefined && attrs.output_dtype !== 0 && attrs.output_dtype !== FLOAT) {
    return `output_dtype ${String(attrs.output_dtype)} (Kiln dequantizes to float32)`;
  }
  return undefined;
}
