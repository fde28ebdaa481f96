/**
 * Views (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout: no data moves) and the copying
 * layout ops (Transpose, Concat, Pad). The batch must stay the leading dimension.
 */
import type { PlanWeight } from '../plan.js';
import { NodeLowering, Unsupported, type ValueRef, numel, shapeText } from './context.js';

export function lowerIdentity(n: NodeLowering): ValueRef[] {
  return [n.viewable(0)];
}

export function lowerReshape(n: NodeLowering): ValueRef[] {
  const x = n.viewable(0);
  return [n.view(x, reshapeTarget(n, x))];
}

/** The per-image shape a Reshape node gives `x` (the batch must stay the leading dimension). */
export function reshapeTarget(n: NodeLowering, x: ValueRef): number[] {
  const target = n.has(1) ? n.ints(1, 'shape') : n.intList('shape');
  const allowZero = n.int('allowzero', 0) === 1;
  const full: (number | 'N')[] = ['N', ...x.shape];
  let infer = -1;
  const out: (number | 'N')[] = target.map((t, i) => {
    if (t === 0 && !allowZero) {
      if (i >= full.length) throw n.shapeError(`shape ${shapeText(target)} copies dimension ${i} of a rank-${full.length} input`);
      return full[i];
    }
    if (t === -1) {
      if (infer >= 0) throw n.shapeError(`shape ${shapeText(target)} has two -1 entries`);
      infer = i;
      return -1;
    }
    if (t < 0) throw n.shapeError(`shape ${shapeText(target)} has a negative entry`);
    return t;
  });
  if (out.length === 0) throw new Unsupported('reshape to a scalar (the batch would disappear)');
  const size = numel(x.shape);
  const rest = (from: number) => numel(out.slice(from).filter((d): d is number => typeof d === 'number' && d !== -1));
  // Which entry keeps the batch: a copied N, an inferred -1 that comes out as N, or a fixed batch.
  if (out[0] === 'N') {
    // kept
  } else if (infer === 0) {
    if (rest(1) !== size) throw new Unsupported(`reshape ${shapeText(target)} folds the batch into other dimensions`);
    infer = -1;
  } else if (n.fixedBatch !== undefined && out[0] === n.fixedBatch) {
    // a graph with a fixed batch names it
  } else {
    throw new Unsupported(`reshape ${shapeText(target)} changes the leading (batch) dimension`);
  }
  const perImage = out.slice(1) as number[];
  if (infer > 0) {
    const known = rest(1);
    if (known === 0 || size % known !== 0) throw n.shapeError(`cannot reshape per-image ${shapeText(x.shape)} to ${shapeText(target)}`);
    perImage[infer - 1] = size / known;
  }
  if (numel(perImage) !== size) throw n.shapeError(`cannot reshape per-image ${shapeText(x.shape)} (${size} elements) to ${shapeText(['N', ...perImage])}`);
  return perImage;
}

export function lowerFlatten(n: NodeLowering): ValueRef[] {
  return [n.view(n.viewable(0), flattenTarget(n, n.viewable(0)), 'Flatten')];
}

/** The per-image shape a Flatten node gives `x`. */
export function flattenTarget(n: NodeLowering, x: ValueRef): number[] {
  const axis = n.axis(n.int('axis', 1), x.shape.length + 2, 'axis');
  // ONNX: [prod(dims before axis), prod(dims from axis)], so the batch survives only when every
  // dimension between it and the axis is 1.
  if (axis === 0 || numel(x.shape.slice(0, axis - 1)) !== 1) throw new Unsupported(`Flatten with axis ${axis} folds the batch into the first dimension`);
  return [numel(x.shape.slice(axis - 1))];
}

function readAxes(n: NodeLowering): number[] | undefined {
  if (n.has(1)) return n.ints(1, 'axes');
  return n.hasAttr('axes') ? n.intList('axes') : undefined;
}

export function lowerSqueeze(n: NodeLowering): ValueRef[] {
  const x = n.viewable(0);
  const rank = x.shape.length + 1;
  const given = readAxes(n);
  const axes = given ? given.map((a) => n.axis(a, rank, 'axes')) : x.shape.map((d, i) => (d === 1 ? i + 1 : -1)).filter((a) => a > 0);
  if (axes.includes(0)) throw new Unsupported('Squeeze of the batch axis');
  for (const a of axes) {
    if (x.shape[a - 1] !== 1) throw n.shapeError(`cannot squeeze axis ${a} of size ${x.shape[a - 1]}`);
  }
  return [n.view(x, x.shape.filter((_, i) => !axes.includes(i + 1)), 'Squeeze')];
}

export function lowerUnsqueeze(n: NodeLowering): ValueRef[] {
  const x = n.viewable(0);
  const given = readAxes(n);
  if (!given) throw n.shapeError('axes are required');
  const rank = x.shape.length + 1 + given.length;
  const axes = given.map((a) => n.axis(a, rank, 'axes'));
  if (new Set(axes).size !== axes.length) throw n.shapeError(`repeated axes ${shapeText(given)}`);
  if (axes.includes(0)) throw new Unsupported('Unsqueeze before the batch axis');
  const out: number[] = [];
  let next = 0;
  for (let i = 1; i < rank; i++) out.push(axes.includes(i) ? 1 : x.shape[next++]);
  return [n.view(x, out, 'Unsqueeze')];
}

/**
 * A Transpose's checked permutation (ONNX numbering, the batch axis kept first) and the per-image
 * output shape for an input of per-image `shape`; `identity` when it moves nothing.
 */
export function transposeSpec(n: NodeLowering, shape: readonly number[]): { perm: number[]; out: number[]; identity: boolean } {
  const rank = shape.length + 1;
  const perm = n.intList('perm', Array.from({ length: rank }, (_, i) => rank - 1 - i));
  if (perm.length !== rank || new Set(perm).size !== rank || perm.some((p) => p < 0 || p >= rank)) {
    throw n.shapeError(`perm ${shapeText(perm)} is not a permutation of ${rank} axes`);
  }
  if (perm[0] !== 0) throw new Unsupported(`perm ${shapeText(perm)} moves the batch axis`);
  return { perm, out: perm.slice(1).map((p) => shape[p - 1]!), identity: perm.every((p, i) => p === i) };
}

export function lowerTranspose(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const { perm, out, identity } = transposeSpec(n, x.shape);
  if (identity) return [x];
  return [n.emit('Transpose', [x], out, { attrs: { perm } })];
}

export function lowerConcat(n: NodeLowering): ValueRef[] {
  // Constant inputs (a leading dimension of 1: the same for every image) become weights "c<k>".
  const parts = n.node.inputs.map((_, i) => {
    if (!n.isConstant(i)) return { value: n.value(i), shape: n.value(i).shape };
    const w = n.weight(i, `input ${i}`);
    if (w.shape.length === 0 || w.shape[0] !== 1) throw new Unsupported(`constant input ${i} of shape ${shapeText(w.shape)} (a constant needs a leading dimension of 1)`);
    return { weight: w, shape: w.shape.slice(1) };
  });
  const xs = parts.flatMap((p) => (p.value ? [p.value] : []));
  if (xs.length === 0) throw new Unsupported('Concat of constants only (fold constants first)');
  const rank = parts[0].shape.length + 1;
  const axis = n.axis(n.int('axis'), rank);
  if (axis === 0) throw new Unsupported('Concat along the batch axis (the batch is the run-time leading dimension of every value)');
  const out = parts[0].shape.slice();
  out[axis - 1] = 0;
  for (const p of parts) {
    if (p.shape.length + 1 !== rank || p.shape.some((d, i) => i !== axis - 1 && d !== parts[0].shape[i])) {
      throw n.shapeError(`inputs ${parts.map((v) => shapeText(['N', ...v.shape])).join(', ')} differ outside axis ${axis}`);
    }
    out[axis - 1] += p.shape[axis - 1];
  }
  if (parts.length === 1) return [xs[0]];
  const weights: Record<string, PlanWeight> = {};
  parts.forEach((p, k) => {
    if (p.weight) weights[`c${k}`] = p.weight;
  });
  return [n.emit('Concat', xs, out, { attrs: { axis }, weights })];
}

export function lowerPad(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const rank = x.shape.length + 1;
  const mode = n.str('mode', 'constant');
  if (!['constant', 'reflect', 'edge', 'wrap'].includes(mode)) throw new Unsupported(`Pad mode '${mode}'`);
  let pads = n.has(1) ? n.ints(1, 'pads') : n.intList('pads');
  const value = n.has(2) ? n.scalar(2, 'constant_value') : n.float('value', 0);
  if (n.has(3)) {
    // Opset 18: pads for the listed axes only.
    const axes = n.ints(3, 'axes').map((a) => n.axis(a, rank, 'axes'));
    if (pads.length !== 2 * axes.length) throw n.shapeError(`pads ${shapeText(pads)} do not match axes ${shapeText(axes)}`);
    const full = new Array<number>(2 * rank).fill(0);
    axes.forEach((a, i) => {
      full[a] = pads[i];
      full[rank + a] = pads[axes.length + i];
    });
    pads = full;
  }
  if (pads.length !== 2 * rank) throw n.shapeError(`pads ${shapeText(pads)} must have ${2 * rank} entries`);
  if (pads[0] !== 0 || pads[rank] !== 0) throw new Unsupported('padding the batch axis');
  const out = x.shape.map((d, i) => d + pads[i + 1] + pads[rank + i + 1]);
  if (out.some((d) => d < 1)) throw n.shapeError(`pads ${shapeText(pads)} leave an empty dimension`);
  if (mode === 'reflect' && x.shape.some((d, i) => pads[i + 1] >= d || pads[rank + i + 1] >= d)) {
    throw n.shapeError(`reflect pads ${shapeText(pads)} must be smaller than the dimensions ${shapeText(['N', ...x.shape])}`);
  }
  // onnxruntime wraps around the cropped input, numpy (the ONNX reference) takes no negative pads.
  if (mode === 'wrap' && pads.some((p) => p < 0)) throw new Unsupported('wrap Pad with negative pads');
  if (pads.every((p) => p === 0)) return [x];
  if (!Number.isFinite(value)) throw n.shapeError(`constant value ${value} must be finite`);
  return [n.emit('Pad', [x], out, { attrs: { pads, mode, value } })];
}
