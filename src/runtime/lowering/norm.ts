/**
 * LayerNormalization (over the trailing axes from `axis` on), GroupNormalization and
 * InstanceNormalization (GroupNormalization with one group per channel). Statistics come from the
 * run's input; scale and bias must be constants, expanded here to the plan's full per-row
 * (LayerNorm) or per-channel (GroupNorm) vectors.
 */
import { NodeLowering, Unsupported, type ValueRef, numel, shapeText } from './context.js';

/** `data` of shape `shape`, numpy-broadcast to `target` (the trailing dims), as a full tensor. */
function broadcastTo(n: NodeLowering, what: string, data: Float32Array, shape: number[], target: number[]): Float32Array {
  if (shape.length > target.length || shape.some((d, i) => d !== 1 && d !== target[target.length - shape.length + i])) {
    throw n.shapeError(`${what} of shape ${shapeText(shape)} does not broadcast to the normalized shape ${shapeText(target)}`);
  }
  if (numel(shape) === numel(target)) return data;
  const full = [...new Array<number>(target.length - shape.length).fill(1), ...shape];
  const out = new Float32Array(numel(target));
  const index = new Array<number>(target.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let src = 0;
    for (let d = 0; d < target.length; d++) src = src * full[d] + (full[d] === 1 ? 0 : index[d]);
    out[i] = data[src];
    for (let d = target.length - 1; d >= 0; d--) {
      if (++index[d] < target[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

export function lowerLayerNorm(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const axis = n.axis(n.int('axis', -1), x.shape.length + 1);
  if (axis === 0) throw new Unsupported('normalization over the batch axis (axis 0)');
  const normalized = x.shape.slice(axis - 1);
  const d = numel(normalized);
  const scale = n.weight(1, 'Scale');
  const weights: Record<string, { data: Float32Array; shape: number[] }> = {
    scale: { data: broadcastTo(n, 'Scale', scale.data, scale.shape, normalized), shape: [d] },
  };
  if (n.has(2)) {
    const b = n.weight(2, 'B');
    weights.B = { data: broadcastTo(n, 'B', b.data, b.shape, normalized), shape: [d] };
  }
  const epsilon = n.float('epsilon', 1e-5);
  const refs = [n.emit('LayerNormalization', [x], x.shape, { attrs: { axis, epsilon }, weights, macs: 2 * numel(x.shape) })];
  // The optional Mean and InvStdDev outputs: one value per row, the normalized dims kept as 1s.
  const stats = x.shape.map((dim, i) => (i < axis - 1 ? dim : 1));
  (['Mean', 'InvStdDev'] as const).forEach((output, i) => {
    if (n.node.outputs[i + 1]) refs[i + 1] = n.emit('LayerNormalization', [x], stats, { attrs: { axis, epsilon, output }, macs: numel(x.shape) });
  });
  return refs;
}

/** GroupNormalization (scale and bias per channel, opset 21, or per group, opset 18) and InstanceNormalization. */
export function lowerGroupNorm(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  if (x.shape.length < 1) throw n.shapeError(`input ${shapeText(['N', ...x.shape])} needs a channel dimension`);
  const c = x.shape[0];
  const instance = n.node.op === 'InstanceNormalization';
  const groups = instance ? c : n.int('num_groups');
  if (groups < 1 || c % groups !== 0) throw n.shapeError(`num_groups ${groups} must divide the ${c} channels`);
  const perChannel = (i: number, name: string): Float32Array => {
    const w = n.weight(i, name);
    if (w.data.length === c) return w.data;
    if (!instance && w.data.length === groups) {
      // Opset-18 GroupNormalization: one value per group, the same for each of its channels.
      const out = new Float32Array(c);
      for (let ch = 0; ch < c; ch++) out[ch] = w.data[Math.floor(ch / (c / groups))];
      return out;
    }
    throw n.shapeError(`${name} has ${w.data.length} elements for ${c} channels${instance ? '' : ` in ${groups} groups`}`);
  };
  const weights = { scale: { data: perChannel(1, 'scale'), shape: [c] }, B: { data: perChannel(2, 'B'), shape: [c] } };
  return [n.emit('GroupNormalization', [x], x.shape, { attrs: { groups, epsilon: n.float('epsilon', 1e-5) }, weights, macs: 2 * numel(x.shape) })];
}
