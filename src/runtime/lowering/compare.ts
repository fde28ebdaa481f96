/**
 * Bool values and the ops that make and read them: Equal / Less / LessOrEqual / Greater /
 * GreaterOrEqual of float32 operands (or Equal of two bools), IsNaN, IsInf, Not, And, Or, Xor,
 * Cast between float32 and bool, and Where(cond, X, Y). Bool values are plan values of type
 * 'bool' (one byte 0/1 per element), marked `bool` on their ValueRef so that no float op and no
 * int8 op mistakes them for its own data. Operands broadcast as numpy does over one rank (the
 * batch stays the leading dimension); a float operand may be a float32 constant.
 */
import type { PlanOp, PlanWeight } from '../plan.js';
import { NodeLowering, Unsupported, type ValueRef, shapeText } from './context.js';

/** ONNX TensorProto data types Cast may convert run-time values to. */
const ONNX_FLOAT = 1;
const ONNX_BOOL = 9;

type Operand = { value: ValueRef } | { weight: PlanWeight };

function floatOperand(n: NodeLowering, i: number, name: string): Operand {
  return n.isConstant(i) ? { weight: n.weight(i, name) } : { value: n.value(i) };
}

/** Per-image shapes of the operands (constants aligned to the values' rank) and their broadcast. */
function broadcastOperands(n: NodeLowering, ops: Operand[]): { perImage: number[][]; out: number[] } {
  const values = ops.flatMap((o) => ('value' in o ? [o.value] : []));
  if (values.length === 0) throw new Unsupported('every operand is a constant (fold constants first)');
  const rank = Math.max(...ops.map((o) => ('value' in o ? o.value.shape.length + 1 : o.weight.shape.length)));
  const perImage = ops.map((o) => {
    if ('value' in o) {
      if (o.value.shape.length + 1 !== rank) throw new Unsupported(`broadcasting would move the batch (operand ranks ${rank} and ${o.value.shape.length + 1})`);
      return o.value.shape;
    }
    const padded = [...new Array<number>(rank - o.weight.shape.length).fill(1), ...o.weight.shape];
    if (padded[0] !== 1) throw new Unsupported(`constant operand of shape ${shapeText(o.weight.shape)} spans the batch dimension`);
    return padded.slice(1);
  });
  const out = perImage[0].slice();
  for (const s of perImage.slice(1)) {
    s.forEach((d, i) => {
      if (d !== out[i] && d !== 1 && out[i] !== 1) throw n.shapeError(`shapes ${perImage.map((p) => shapeText(['N', ...p])).join(', ')} do not broadcast`);
      out[i] = Math.max(out[i], d);
    });
  }
  return { perImage, out };
}

/** Equal / Less / LessOrEqual / Greater / GreaterOrEqual, and And / Or / Xor. */
export function lowerCompare(n: NodeLowering): ValueRef[] {
  const op = n.node.op as PlanOp;
  const logic = op === 'And' || op === 'Or' || op === 'Xor';
  const boolEqual = op === 'Equal' && !n.isConstant(0) && !n.isConstant(1) && n.viewable(0).bool === true;
  if (logic || boolEqual) {
    if (n.isConstant(0) || n.isConstant(1)) throw new Unsupported('a constant bool operand (fold constants first)');
    const a = n.boolValue(0);
    const b = n.boolValue(1);
    const { out } = broadcastOperands(n, [{ value: a }, { value: b }]);
    return [n.emit(op, [a, b], out, { bool: true })];
  }
  const a = floatOperand(n, 0, 'A');
  const b = floatOperand(n, 1, 'B');
  const { out } = broadcastOperands(n, [a, b]);
  const weights: Record<string, PlanWeight> = {};
  if ('weight' in a) weights.A = a.weight;
  if ('weight' in b) weights.B = b.weight;
  const inputs = [a, b].flatMap((o) => ('value' in o ? [o.value] : []));
  return [n.emit(op, inputs, out, { weights, bool: true })];
}

export function lowerNot(n: NodeLowering): ValueRef[] {
  const x = n.boolValue(0);
  return [n.emit('Not', [x], x.shape, { bool: true })];
}

/** IsNaN, and IsInf with its detect_negative / detect_positive flags. */
export function lowerClassify(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  if (n.node.op === 'IsNaN') return [n.emit('IsNaN', [x], x.shape, { bool: true })];
  const flag = (name: string): number => {
    const v = n.int(name, 1);
    if (v !== 0 && v !== 1) throw n.shapeError(`attribute '${name}' must be 0 or 1, received ${v}`);
    return v;
  };
  return [n.emit('IsInf', [x], x.shape, { attrs: { detect_negative: flag('detect_negative'), detect_positive: flag('detect_positive') }, bool: true })];
}

/** Cast of a run-time value: float32 <-> bool in the plan; a cast to its own type is the value itself. */
export function lowerCast(n: NodeLowering): ValueRef[] {
  const x = n.viewable(0);
  const to = n.int('to');
  if (to === ONNX_BOOL) return [x.bool ? x : n.emit('Cast', [x], x.shape, { attrs: { to: 'bool' }, bool: true })];
  if (to === ONNX_FLOAT) return [x.bool ? n.emit('Cast', [x], x.shape, { attrs: { to: 'float32' } }) : x];
  throw new Unsupported(`Cast to ONNX type ${to} on values computed at run time (the runtime carries float32 and bool values)`);
}

/** Where(cond, X, Y): cond a bool value or constant, X and Y float32 values or constants. */
export function lowerWhere(n: NodeLowering): ValueRef[] {
  const cond: Operand = n.isConstant(0) ? { weight: boolWeight(n, 0) } : { value: n.boolValue(0) };
  const x = floatOperand(n, 1, 'X');
  const y = floatOperand(n, 2, 'Y');
  const ops = [cond, x, y];
  const { out } = broadcastOperands(n, ops);
  const weights: Record<string, PlanWeight> = {};
  if ('weight' in cond) weights.C = cond.weight;
  if ('weight' in x) weights.X = x.weight;
  if ('weight' in y) weights.Y = y.weight;
  const inputs = ops.flatMap((o) => ('value' in o ? [o.value] : []));
  return [n.emit('Where', inputs, out, { weights })];
}

/** A constant bool tensor (uint8 0/1 after import) as a float32 0/1 plan weight. */
function boolWeight(n: NodeLowering, i: number): PlanWeight {
  const t = n.constant(i, 'condition');
  if (t.type !== 'uint8') throw n.shapeError(`the condition has dtype ${t.type}, not bool`);
  return { data: Float32Array.from(t.data as Uint8Array, (v) => (v !== 0 ? 1 : 0)), shape: t.dims.slice() };
}
