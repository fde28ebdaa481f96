/** Activations, Add/Sub/Mul/Div with broadcasting, Sum. */
import type { PlanWeight } from '../plan.js';
import { NodeLowering, Unsupported, type ValueRef, shapeText } from './context.js';

const F32_MAX = 3.4028234663852886e38;

export function lowerUnary(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const op = n.node.op;
  let attrs: Record<string, number> = {};
  if (op === 'LeakyRelu') attrs = { alpha: n.float('alpha', 0.01) };
  if (op === 'HardSigmoid') attrs = { alpha: n.float('alpha', 0.2), beta: n.float('beta', 0.5) };
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

export function lowerBinary(n: NodeLowering): ValueRef[] {
  const aConst = n.isConstant(0);
  const bConst = n.isConstant(1);
  if (aConst && bConst) throw new Unsupported('both operands are constants (fold constants first)');
  const values = [aConst ? undefined : n.value(0), bConst ? undefined : n.value(1)];
  const consts = [aConst ? n.weight(0, 'A') : undefined, bConst ? n.weight(1, 'B') : undefined];
  const rank = Math.max(...values.map((v) => (v ? v.shape.length + 1 : 0)), ...consts.map((c) => (c ? c.shape.length : 0)));
  const perImage: number[][] = [];
  for (let i = 0; i < 2; i++) {
    const v = values[i];
    const c = consts[i];
    if (v) {
      if (v.shape.length + 1 !== rank) throw new Unsupported(`broadcasting would move the batch (operand ranks ${rank} and ${v.shape.length + 1})`);
      perImage.push(v.shape);
    } else {
      const padded = [...new Array<number>(rank - c!.shape.length).fill(1), ...c!.shape];
      if (padded[0] !== 1) throw new Unsupported(`constant operand of shape ${shapeText(c!.shape)} spans the batch dimension`);
      perImage.push(padded.slice(1));
    }
  }
  const out = broadcast(n, perImage[0], perImage[1]);
  const weights: Record<string, PlanWeight> | undefined = consts[0] ? { A: consts[0] } : consts[1] ? { B: consts[1] } : undefined;
  const inputs = values.filter((v): v is ValueRef => v !== undefined);
  return [n.emit(n.node.op as 'Add', inputs, out, { weights })];
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
