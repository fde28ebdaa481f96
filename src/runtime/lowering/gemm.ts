/** Gemm (the batch is A's rows) and MatMul (numpy semantics, the batch leading). */
import type { PlanWeight } from '../plan.js';
import { NodeLowering, Unsupported, type ValueRef, numel, shapeText } from './context.js';
import { activationAttrs } from './window.js';

export function lowerGemm(n: NodeLowering): ValueRef[] {
  const a = n.value(0);
  if (a.shape.length !== 1) throw n.shapeError(`A must be 2-D, received ${shapeText(['N', ...a.shape])}`);
  if (n.int('transA', 0) !== 0) throw new Unsupported('transA=1 (the batch would be a column of A)');
  const transB = n.int('transB', 0) !== 0;
  const b = n.weight(1, 'B');
  if (b.shape.length !== 2) throw n.shapeError(`B must be 2-D, received ${shapeText(b.shape)}`);
  const k = a.shape[0];
  const [bk, bn] = transB ? [b.shape[1], b.shape[0]] : b.shape;
  if (bk !== k) throw n.shapeError(`A has ${k} columns but B ${shapeText(b.shape)} (transB=${transB ? 1 : 0}) has ${bk} rows`);
  const weights: Record<string, { data: Float32Array; shape: number[] }> = { B: b };
  if (n.has(2)) {
    const c = n.weight(2, 'C');
    const len = c.data.length;
    const batchFree = c.shape.length <= 2 && (len === 1 || len === bn) && (c.shape.length === 0 || c.shape[c.shape.length - 1] === len);
    if (!batchFree) throw new Unsupported(`bias C of shape ${shapeText(c.shape)} varies per row (only [N] or [1, N] biases)`);
    weights.C = c;
  }
  const attrs = { transA: 0, transB: transB ? 1 : 0, alpha: n.float('alpha', 1), beta: n.float('beta', 1), ...activationAttrs(n), ...(n.sparseKernels !== 'never' ? { sparse: n.sparseKernels } : {}) };
  return [n.emit('Gemm', [a], [bn], { attrs, weights, macs: k * bn })];
}

const BATCH = -1;

export function lowerMatMul(n: NodeLowering): ValueRef[] {
  const aConst = n.isConstant(0);
  const bConst = n.isConstant(1);
  if (aConst && bConst) throw new Unsupported('both operands are constants (fold constants first)');
  const a = aConst ? undefined : n.value(0);
  const b = bConst ? undefined : n.value(1);
  const aw = aConst ? n.weight(0, 'A') : undefined;
  const bw = bConst ? n.weight(1, 'B') : undefined;
  // Full shapes, the batch marked BATCH.
  let aFull = a ? [BATCH, ...a.shape] : aw!.shape.slice();
  let bFull = b ? [BATCH, ...b.shape] : bw!.shape.slice();
  if (aFull.length === 0 || bFull.length === 0) throw n.shapeError('MatMul operands must have rank >= 1');
  const dropM = aFull.length === 1;
  const dropN = bFull.length === 1;
  if (dropM) aFull = [1, ...aFull];
  if (dropN) bFull = [...bFull, 1];
  const m = aFull[aFull.length - 2], k = aFull[aFull.length - 1];
  const kb = bFull[bFull.length - 2], nn = bFull[bFull.length - 1];
  const text = `A ${shapeText(aFull.map((d) => (d === BATCH ? 'N' : d)))}, B ${shapeText(bFull.map((d) => (d === BATCH ? 'N' : d)))}`;
  const weights: Record<string, PlanWeight> | undefined = aw ? { A: aw } : bw ? { B: bw } : undefined;
  const inputs = [a, b].filter((r): r is ValueRef => r !== undefined);
  if (a && aFull.length === 2) {
    if (!bw || bFull.length !== 2) throw new Unsupported(`a 2-D A needs a constant 1-D or 2-D B (${text})`);
    if (k !== kb) throw n.shapeError(`inner dimensions differ: ${text}`);
    return [n.emit('MatMul', inputs, dropN ? [] : [nn], { weights, macs: k * nn })];
  }
  if ([m, k, kb, nn].includes(BATCH)) throw new Unsupported(`the batch would be a matrix dimension (${text})`);
  if (k !== kb) throw n.shapeError(`inner dimensions differ: ${text}`);
  const aB = aFull.slice(0, -2), bB = bFull.slice(0, -2);
  const rank = Math.max(aB.length, bB.length);
  const aOk = a ? aB.length === rank : aB.length < rank || aB[0] === 1;
  const bOk = b ? bB.length === rank : bB.length < rank || bB[0] === 1;
  if (!aOk || !bOk) throw new Unsupported(`broadcasting would move the batch away from the leading dimension (${text})`);
  const pad = (v: number[]) => [...new Array<number>(rank - v.length).fill(1), ...v];
  const pa = pad(aB), pb = pad(bB);
  const outB: number[] = [];
  for (let d = 1; d < rank; d++) {
    if (pa[d] !== pb[d] && pa[d] !== 1 && pb[d] !== 1) throw n.shapeError(`batch dimensions do not broadcast: ${text}`);
    outB.push(Math.max(pa[d], pb[d]));
  }
  const out = [...outB, ...(dropM ? [] : [m]), ...(dropN ? [] : [nn])];
  return [n.emit('MatMul', inputs, out, { weights, macs: numel(outB) * m * k * nn })];
}
