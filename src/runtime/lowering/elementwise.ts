/** Activations and unary math, Add/Sub/Mul/Div/Pow/PRelu with broadcasting, Sum, Max, Min. */
import type { PlanOp, PlanWeight } from '../plan.js';
import { NodeLowering, Unsupported, type ValueRef, shapeText } from './context.js';

const F32_MAX = 3.4028234663852886e38;

export function lowerUnary(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const op = n.node.op;
  let attrs: Record<string, number> = {};
  if (op === 'LeakyRelu') attrs = { alpha: n.float('alpha', 0.01) };
  if (op === 'HardSigmoid') attrs = { alpha: n.float('alpha', 0.2), beta: n.float('beta', 0.5) };
  if (op === 'Elu' || op === 'Celu' || op === 'ThresholdedRelu') attrs = { alpha: n.float('alpha', 1) };
  if (op === 'Celu' && attrs.alpha === 0) throw n.shapeError('Celu alpha must not be 0');
  if (op === 'Selu') attrs = { alpha: n.float('alpha', 1.67326319217681884765625), gamma: n.float('gamma', 1.05070102214813232421875) };
  if (op === 'Gelu') {
    const approximate = n.str('approximate', 'none');
    if (approximate !== 'none' && approximate !== 'tanh') throw n.shapeError(`approximate '${approximate}' is not 'none' or 'tanh'`);
    return [n.emit('Gelu', [x], x.shape, { attrs: { approximate } })];
  }
  if (op === 'Clip') {
    // Opset < 11: attributes; later: optional inputs 1 and 2.
    const min = n.has(1) ? n.scalar(1, 'min') : n.float('min', -F32_MAX);
    const max = n.has(2) ? n.scalar(2, 'max') : n.float('max', F32_MAX);
    attrs = { min: Math.max(min, -F32_MAX), max: Math.min(max, F32_MAX) };
  }
  return [n.emit(op as 'Relu', [x], x.shape, { attrs })];
}

/** Per-image broadcast of equal-rank shapes. */
function broadcast(n: NodeLowering, a: number[], b: number[]): number[] {
  return a.map((d, i) => {
    if (d !== b[i] && d !== 1 && b[i] !== 1) throw n.shapeError(`shapes ${shapeText(['N', ...a])} and ${shapeText(['N', ...b])} do not broadcast`);
    return Math.max(d, b[i]);
  });
}

/** One operand of a broadcast binary step: a per-image value or a constant. */
type Operand = { value: ValueRef } | { weight: PlanWeight };

function operand(n: NodeLowering, i: number, name: string): Operand {
  if (!n.isConstant(i)) return { value: n.value(i) };
  // Pow's exponent may be an integer constant (x ** 2 written with an int64 2).
  const t = n.constant(i, name);
  if (n.node.op === 'Pow' && i === 1 && t.type !== 'float32') return { weight: { data: Float32Array.from(t.data as ArrayLike<number>), shape: t.dims.slice() } };
  return { weight: n.weight(i, name) };
}

/** One broadcast binary step a op b (at most one constant operand); its per-image output shape. */
function binaryStep(n: NodeLowering, op: PlanOp, a: Operand, b: Operand): ValueRef {
  const ops = [a, b];
  if ('weight' in a && 'weight' in b) throw new Unsupported('both operands are constants (fold constants first)');
  const rank = Math.max(...ops.map((o) => ('value' in o ? o.value.shape.length + 1 : o.weight.shape.length)));
  const perImage: number[][] = [];
  for (const o of ops) {
    if ('value' in o) {
      if (o.value.shape.length + 1 !== rank) throw new Unsupported(`broadcasting would move the batch (operand ranks ${rank} and ${o.value.shape.length + 1})`);
      perImage.push(o.value.shape);
    } else {
      const padded = [...new Array<number>(rank - o.weight.shape.length).fill(1), ...o.weight.shape];
      if (padded[0] !== 1) throw new Unsupported(`constant operand of shape ${shapeText(o.weight.shape)} spans the batch dimension`);
      perImage.push(padded.slice(1));
    }
  }
  const out = broadcast(n, perImage[0], perImage[1]);
  if (op === 'PRelu' && shapeText(out) !== shapeText(perImage[0])) {
    throw n.shapeError(`slope ${shapeText(['N', ...perImage[1]])} does not broadcast to X ${shapeText(['N', ...perImage[0]])}`);
  }
  if (op === 'PRelu' && 'weight' in a) throw new Unsupported('X is a constant (fold constants first)');
  const weights: Record<string, PlanWeight> | undefined = 'weight' in a ? { A: a.weight } : 'weight' in b ? { B: b.weight } : undefined;
  const inputs = ops.flatMap((o) => ('value' in o ? [o.value] : []));
  return n.emit(op, inputs, out, { weights });
}

export function lowerBinary(n: NodeLowering): ValueRef[] {
  return [binaryStep(n, n.node.op as PlanOp, operand(n, 0, 'A'), operand(n, 1, 'B'))];
}

/** Max / Min: variadic, as a chain of broadcast binary steps (one input: the input itself). */
export function lowerVariadic(n: NodeLowering): ValueRef[] {
  const count = n.node.inputs.length;
  if (count === 0) throw n.shapeError(`${n.node.op} needs at least one input`);
  if (count === 1) return [n.value(0)];
  let acc = binaryStep(n, n.node.op as PlanOp, operand(n, 0, 'A'), operand(n, 1, 'B'));
  for (let i = 2; i < count; i++) acc = binaryStep(n, n.node.op as PlanOp, { value: acc }, operand(n, i, 'B'));
  return [acc];
}

export function lowerSum(n: NodeLowering): ValueRef[] {
  const xs = n.node.inputs.map((_, i) => n.value(i));
  if (xs.length === 0) throw n.shapeError('Sum needs at least one input');
  let out = xs[0].shape;
  for (const x of xs.slice(1)) {
    if (x.shape.length !== out.length) throw new Unsupported('Sum of operands of different ranks (the batch would move)');
    out = broadcast(n, out, x.shape);
  }
  return [n.emit('Sum', xs, out)];
}
