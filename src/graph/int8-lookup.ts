/**
 * QLinearLookup, the int8 IR's elementwise function between two quantized values (docs/int8-ir.md):
 * which float functions it stands for, and the 256-entry table that makes it exact. A quantized
 * input has at most 256 codes, so y = Q(f(DQ(x))) is known for every one of them in advance: the
 * runtime maps codes through the table (onnxruntime does the same for QLinearSigmoid and
 * QLinearLeakyRelu), the reference interpreter reads the same table, and the ONNX export writes
 * DQ -> f -> Q, which the table reproduces (f in double precision here, float32 there: a result
 * that lands within float32 rounding of a half step may round the other way, one step apart).
 */
import type { GraphNode } from './ir.js';
import { roundHalfEven } from '../quant/qparams.js';
import { erf } from '../util/erf.js';
import { qRange, type QDType, type QuantAttrs, type TensorQuant } from './int8-ir.js';

/**
 * The float functions a QLinearLookup stands for: ONNX unary ops, SiLU (x * Sigmoid(x)) and Gelu
 * (its erf form; `kiln_function` 'GeluTanh' for Gelu with approximate = 'tanh').
 */
export const LOOKUP_FUNCTIONS: ReadonlySet<string> = new Set([
  'Sigmoid', 'HardSigmoid', 'HardSwish', 'SiLU', 'Tanh', 'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Softplus', 'Softsign', 'Abs', 'Neg', 'Gelu',
]);

/** Every `kiln_function` name: the functions above, and Gelu's tanh approximation. */
export const LOOKUP_NAMES: readonly string[] = [...LOOKUP_FUNCTIONS, 'GeluTanh'];

/** The `kiln_function` of a float node of LOOKUP_FUNCTIONS; undefined where it has no lookup (a Gelu approximation ONNX does not define). */
export function lookupName(node: GraphNode): string | undefined {
  if (!LOOKUP_FUNCTIONS.has(node.op)) return undefined;
  if (node.op !== 'Gelu') return node.op;
  const approximate = node.attrs.approximate ?? 'none';
  return approximate === 'none' ? 'Gelu' : approximate === 'tanh' ? 'GeluTanh' : undefined;
}

/** ONNX defaults of the functions' attributes. */
const DEFAULTS: Record<string, { alpha?: number; beta?: number; gamma?: number }> = {
  HardSigmoid: { alpha: 0.2, beta: 0.5 },
  LeakyRelu: { alpha: 0.01 },
  Elu: { alpha: 1 },
  Selu: { alpha: 1.67326319217681884765625, gamma: 1.05070102214813232421875 },
};

/** The attributes of `node` (an ONNX unary op) that its function reads, defaults filled in. */
export function lookupParams(node: GraphNode): { alpha?: number; beta?: number; gamma?: number } {
  const d = DEFAULTS[node.op] ?? {};
  const out: { alpha?: number; beta?: number; gamma?: number } = {};
  for (const k of ['alpha', 'beta', 'gamma'] as const) {
    if (d[k] === undefined) continue;
    const v = node.attrs[k];
    out[k] = Math.fround(typeof v === 'number' ? v : d[k]!);
  }
  return out;
}

/** f for a QLinearLookup's `kiln_function` and attributes; undefined for an unknown name. */
export function lookupFunction(name: string, p: { alpha?: number; beta?: number; gamma?: number } = {}): ((x: number) => number) | undefined {
  const alpha = p.alpha ?? DEFAULTS[name]?.alpha ?? 0;
  const beta = p.beta ?? DEFAULTS[name]?.beta ?? 0;
  const gamma = p.gamma ?? DEFAULTS[name]?.gamma ?? 0;
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  switch (name) {
    case 'Sigmoid':
      return sigmoid;
    case 'HardSigmoid':
      return (x) => Math.max(0, Math.min(1, alpha * x + beta));
    case 'HardSwish':
      return (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5));
    case 'SiLU':
      return (x) => x * sigmoid(x);
    case 'Tanh':
      return Math.tanh;
    case 'Relu':
      return (x) => Math.max(0, x);
    case 'LeakyRelu':
      return (x) => (x < 0 ? alpha * x : x);
    case 'Elu':
      return (x) => (x < 0 ? alpha * Math.expm1(x) : x);
    case 'Selu':
      return (x) => gamma * (x <= 0 ? alpha * Math.expm1(x) : x);
    case 'Softplus':
      return (x) => (x > 30 ? x : Math.log1p(Math.exp(x)));
    case 'Softsign':
      return (x) => x / (1 + Math.abs(x));
    case 'Abs':
      return Math.abs;
    case 'Neg':
      return (x) => -x;
    case 'Gelu':
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'GeluTanh':
      return (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    default:
      return undefined;
  }
}

/**
 * Output codes for every input code: entry k is Q_y(f(DQ_x(qmin + k))), with DQ and the division
 * by the output scale in float32 and round-half-to-even, as QuantizeLinear rounds.
 */
export function lookupTable(f: (x: number) => number, x: TensorQuant, y: TensorQuant): Int32Array {
  const { qmin, qmax } = qRange(x.dtype);
  const out = qRange(y.dtype);
  const table = new Int32Array(qmax - qmin + 1);
  for (let q = qmin; q <= qmax; q++) {
    const real = Math.fround(Math.fround(q - x.zeroPoint) * Math.fround(x.scale));
    const v = Math.fround(f(real));
    let code: number;
    if (Number.isNaN(v)) code = y.zeroPoint;
    else {
      const r = Math.fround(v / Math.fround(y.scale));
      code = Number.isFinite(r) ? roundHalfEven(r) + y.zeroPoint : r > 0 ? out.qmax : out.qmin;
    }
    table[q - qmin] = Math.min(out.qmax, Math.max(out.qmin, code));
  }
  return table;
}

/** The stored form of a table (uint8 storage: int8 codes offset by 128), as the native step reads it. */
export function storedTable(table: Int32Array, y: QDType): number[] {
  // Entry k of `table` is input code qmin + k, and the stored input code is k for uint8 and int8
  // alike (int8 is stored offset by 128, and its qmin is -128): only the outputs shift.
  const yOffset = y === 'int8' ? 128 : 0;
  return Array.from(table, (c) => c + yOffset);
}

/**
 * A QLinearLookup node's input and output parameters and function, checked (errors carry the
 * QuantAttrs' code and name the node). `x` is the quantization of its input value.
 */
export function lookupOf(a: QuantAttrs, x: TensorQuant): { f: (v: number) => number; name: string; x: TensorQuant; y: TensorQuant } {
  const name = a.node.attrs.kiln_function;
  const f = typeof name === 'string' ? lookupFunction(name, numbers(a)) : undefined;
  if (f === undefined || typeof name !== 'string') throw a.fail('attribute kiln_function', `one of ${LOOKUP_NAMES.join(', ')}`, name);
  const scale = a.scale('x_scale');
  const zeroPoint = a.zeroPoint('x_zero_point', x.dtype);
  if (scale !== x.scale || zeroPoint !== x.zeroPoint) {
    throw a.fail('attributes x_scale / x_zero_point', `the parameters of its input (${x.scale}, ${x.zeroPoint})`, `${scale}, ${zeroPoint}`);
  }
  const y = a.output();
  if (y === undefined) throw a.fail('attributes y_scale / y_zero_point', 'a quantized output', 'none');
  return { f, name, x, y };
}

function numbers(a: QuantAttrs): { alpha?: number; beta?: number; gamma?: number } {
  const out: { alpha?: number; beta?: number; gamma?: number } = {};
  for (const k of ['alpha', 'beta', 'gamma'] as const) {
    const v = a.node.attrs[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw a.fail(`attribute ${k}`, 'a finite number', v);
    out[k] = v;
  }
  return out;
}
