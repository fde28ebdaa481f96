/**
 * The data-movement ops that copy with an index map per dimension (Slice, Split, Gather, Expand,
 * Tile: the native Slice / Gather / Expand / Tile steps), Resize (the native Resize step) and
 * DepthToSpace / SpaceToDepth (views around a Transpose). The batch stays the leading dimension
 * and is never sliced, gathered, tiled or resized.
 */
import { sliceIndices } from '../../graph/constant-folding.js';
import type { PlanAttr } from '../plan.js';
import { NodeLowering, Unsupported, type ValueRef, numel, shapeText } from './context.js';

const INT32_MAX = 2147483647;

/** A Slice of `x` along per-image dims: starts/steps per dim and the kept count. */
function emitSlice(n: NodeLowering, x: ValueRef, starts: number[], steps: number[], out: number[]): ValueRef {
  if (out.some((d) => d === 0)) throw new Unsupported('a slice that leaves an empty dimension');
  if (starts.every((s) => s === 0) && steps.every((s) => s === 1) && shapeText(out) === shapeText(x.shape)) return x;
  return n.emit('Slice', [x], out, { attrs: { starts, steps }, macs: 0 });
}

/** Per-image starts, steps and output shape of a Slice node on `x`. */
export function sliceSpec(n: NodeLowering, x: ValueRef): { starts: number[]; steps: number[]; out: number[] } {
  const rank = x.shape.length + 1;
  const startsAttr = n.intList('starts');
  const ends = n.intList('ends');
  const axes = n.intList('axes', startsAttr.map((_, i) => i)).map((a) => n.axis(a, rank, 'axes'));
  const stepsAttr = n.intList('steps', startsAttr.map(() => 1));
  if (ends.length !== startsAttr.length || axes.length !== startsAttr.length || stepsAttr.length !== startsAttr.length || stepsAttr.includes(0)) {
    throw n.shapeError('starts, ends, axes and steps must have one length and non-zero steps');
  }
  const starts = x.shape.map(() => 0);
  const steps = x.shape.map(() => 1);
  const out = x.shape.slice();
  axes.forEach((a, i) => {
    if (a === 0) {
      if (startsAttr[i] === 0 && stepsAttr[i] === 1 && (ends[i] >= INT32_MAX || (n.fixedBatch !== undefined && ends[i] >= n.fixedBatch))) return;
      throw new Unsupported('Slice of the batch axis');
    }
    const keep = sliceIndices(x.shape[a - 1], startsAttr[i], ends[i], stepsAttr[i]);
    if (keep.length === 0) throw new Unsupported(`a slice that leaves axis ${a} empty`);
    starts[a - 1] = keep[0];
    steps[a - 1] = keep.length > 1 ? keep[1] - keep[0] : 1;
    out[a - 1] = keep.length;
  });
  return { starts, steps, out };
}

export function lowerSlice(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const { starts, steps, out } = sliceSpec(n, x);
  return [emitSlice(n, x, starts, steps, out)];
}

/** Per-image starts, steps and shape of each output of a Split node on `x`. */
export function splitParts(n: NodeLowering, x: ValueRef): { starts: number[]; steps: number[]; out: number[] }[] {
  const a = n.axis(n.int('axis', 0), x.shape.length + 1);
  if (a === 0) throw new Unsupported('Split of the batch axis');
  const parts = n.intList('split');
  if (parts.length !== n.node.outputs.length) throw n.shapeError(`${parts.length} split sizes for ${n.node.outputs.length} outputs`);
  if (parts.reduce((p, q) => p + q, 0) !== x.shape[a - 1]) throw n.shapeError(`split ${shapeText(parts)} does not add up to dimension ${a} of ${shapeText(['N', ...x.shape])}`);
  if (parts.some((p) => p < 1)) throw new Unsupported('a Split with an empty part');
  let at = 0;
  return parts.map((size) => {
    const starts = x.shape.map((_, i) => (i === a - 1 ? at : 0));
    at += size;
    return { starts, steps: x.shape.map(() => 1), out: x.shape.map((d, i) => (i === a - 1 ? size : d)) };
  });
}

export function lowerSplit(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  return splitParts(n, x).map((p) => emitSlice(n, x, p.starts, p.steps, p.out));
}

export function lowerGather(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const a = n.axis(n.int('axis', 0), x.shape.length + 1);
  if (a === 0) throw new Unsupported('Gather along the batch axis');
  const t = n.constant(1, 'indices');
  const size = x.shape[a - 1];
  const indices = n.ints(1, 'indices').map((i) => {
    if (i < -size || i >= size) throw n.shapeError(`index ${i} is out of range for axis ${a} of size ${size}`);
    return i < 0 ? i + size : i;
  });
  if (indices.length === 0) throw new Unsupported('Gather with no indices (an empty output)');
  const flat = x.shape.map((d, i) => (i === a - 1 ? indices.length : d));
  const y = n.emit('Gather', [x], flat, { attrs: { axis: a, indices }, macs: 0 });
  const shape = [...x.shape.slice(0, a - 1), ...t.dims, ...x.shape.slice(a)];
  if (shape.length === 0) throw new Unsupported('Gather that leaves a scalar per image');
  return [n.view(y, shape, 'Reshape')];
}

export function lowerExpand(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const target = n.intList('shape');
  const rank = x.shape.length + 1;
  if (target.length > rank) throw new Unsupported(`Expand to rank ${target.length} from rank ${rank} (the batch would not stay the leading dimension)`);
  // Right-aligned broadcast; target[0] against the batch must leave it alone.
  const full = [...new Array<number>(rank - target.length).fill(1), ...target];
  if (full[0] !== 1 && full[0] !== n.fixedBatch) throw new Unsupported(`Expand of the batch axis to ${full[0]}`);
  const out = x.shape.map((d, i) => {
    const t = full[i + 1];
    if (d !== t && d !== 1 && t !== 1) throw n.shapeError(`cannot broadcast ${shapeText(['N', ...x.shape])} to ${shapeText(target)}`);
    return d === 1 ? t : d;
  });
  if (shapeText(out) === shapeText(x.shape)) return [x];
  return [n.emit('Expand', [x], out, { macs: 0 })];
}

export function lowerTile(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const repeats = n.intList('repeats');
  if (repeats.length !== x.shape.length + 1) throw n.shapeError(`repeats ${shapeText(repeats)} must have ${x.shape.length + 1} entries`);
  if (repeats.some((r) => r < 1)) throw new Unsupported(`repeats ${shapeText(repeats)} (zero repeats leave an empty tensor)`);
  if (repeats[0] !== 1) throw new Unsupported('Tile of the batch axis');
  if (repeats.every((r) => r === 1)) return [x];
  const per = repeats.slice(1);
  return [n.emit('Tile', [x], x.shape.map((d, i) => d * per[i]), { attrs: { repeats: per }, macs: 0 })];
}

/** DepthToSpace (DCR, CRD) and SpaceToDepth: a view, a Transpose, a view. */
export function lowerDepthToSpace(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  if (x.shape.length !== 3) throw new Unsupported(`a rank-${x.shape.length + 1} input (NCHW only)`);
  const b = n.int('blocksize');
  const [c, h, w] = x.shape;
  if (n.node.op === 'DepthToSpace') {
    if (c % (b * b) !== 0) throw n.shapeError(`${c} channels are not divisible by blocksize^2 = ${b * b}`);
    const k = c / (b * b);
    const crd = n.str('mode', 'DCR') === 'CRD';
    const v = n.view(x, crd ? [k, b, b, h, w] : [b, b, k, h, w]);
    const perm = crd ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2];
    const t = n.emit('Transpose', [v], [k, h, b, w, b], { attrs: { perm }, macs: 0 });
    return [n.view(t, [k, h * b, w * b])];
  }
  if (h % b !== 0 || w % b !== 0) throw n.shapeError(`spatial size ${h}x${w} is not divisible by blocksize ${b}`);
  const v = n.view(x, [c, h / b, b, w / b, b]);
  const t = n.emit('Transpose', [v], [b, b, c, h / b, w / b], { attrs: { perm: [0, 3, 5, 1, 2, 4] }, macs: 0 });
  return [n.view(t, [c * b * b, h / b, w / b])];
}

/** The Resize step of a node on `x` (per-image shape), or undefined when it keeps `x` as is. */
export function resizeStep(n: NodeLowering, x: ValueRef): { out: number[]; attrs: Record<string, PlanAttr>; macs: number } | undefined {
  const rank = x.shape.length + 1;
  const scales = n.hasAttr('scales') ? (n.node.attrs.scales as number[]) : undefined;
  const sizes = n.hasAttr('sizes') ? n.intList('sizes') : undefined;
  if (scales === undefined || scales.length !== rank) throw n.shapeError(`expected ${rank} scales`);
  if (sizes !== undefined && sizes.length !== rank) throw n.shapeError(`expected ${rank} sizes`);
  // Only the last two dims (H, W) may change; the batch never.
  const spatial = Math.min(2, rank - 1);
  for (let i = 0; i < rank - spatial; i++) {
    const same = i === 0 ? scales[0] === 1 : scales[i] === 1 && (sizes === undefined || sizes[i] === x.shape[i - 1]);
    if (!same) throw new Unsupported(`resizing axis ${i} (Kiln resizes the last two axes)`);
  }
  const out = x.shape.map((d, i) => (i + 1 < rank - spatial ? d : sizes !== undefined ? sizes[i + 1] : Math.floor(Math.fround(Math.fround(scales[i + 1]) * d))));
  if (out.some((d) => d < 1)) throw new Unsupported(`a resize to an empty shape ${shapeText(['N', ...out])}`);
  const mode = n.str('mode', 'nearest');
  const coord = n.str('coordinate_transformation_mode', 'half_pixel');
  const crop = coord === 'tf_crop_and_resize';
  const roi = crop ? (n.node.attrs.roi as number[] | undefined) : undefined;
  if (crop) {
    if (roi === undefined || roi.length !== 2 * rank) throw n.shapeError(`expected ${2 * rank} roi values`);
    for (let i = 0; i < rank - spatial; i++) {
      if (roi[i] !== 0 || roi[rank + i] !== 1) throw new Unsupported(`cropping axis ${i} (Kiln resizes the last two axes)`);
    }
  }
  const antialias = n.int('antialias', 0) === 1 && mode !== 'nearest';
  if (!crop && shapeText(out) === shapeText(x.shape) && scales.every((s) => s === 1) && (mode === 'nearest' || coord !== 'half_pixel_symmetric')) {
    // Same size, scale 1: every mode reads each pixel itself (align_corners too).
    return undefined;
  }
  const hw = spatial === 2 ? [scales[rank - 2], scales[rank - 1]] : [1, scales[rank - 1]];
  // An antialiased downscale reads 1/scale times as many taps per axis.
  const support = (s: number) => (antialias && s < 1 ? Math.ceil(1 / s) : 1);
  const taps = (mode === 'nearest' ? 1 : mode === 'linear' ? 4 : 16) * support(hw[0]!) * support(hw[1]!);
  const extra: Record<string, PlanAttr> = {};
  if (antialias) extra.antialias = 1;
  if (crop) {
    // [H start, W start, H end, W end]; a rank-1 image keeps H whole.
    extra.roi = spatial === 2 ? [roi![rank - 2]!, roi![rank - 1]!, roi![2 * rank - 2]!, roi![2 * rank - 1]!] : [0, roi![rank - 1]!, 1, roi![2 * rank - 1]!];
    extra.extrapolation_value = n.float('extrapolation_value', 0);
  }
  return {
    out,
    attrs: {
      ...extra,
      mode,
      coordinate_transformation_mode: coord,
      nearest_mode: n.str('nearest_mode', 'round_prefer_floor'),
      cubic_coeff_a: n.float('cubic_coeff_a', -0.75),
      exclude_outside: n.int('exclude_outside', 0),
      scales: hw,
    },
    macs: numel(out) * taps,
  };
}

export function lowerResize(n: NodeLowering): ValueRef[] {
  const x = n.value(0);
  const step = resizeStep(n, x);
  if (!step) return [x];
  return [n.emit('Resize', [x], step.out, { attrs: step.attrs, macs: step.macs })];
}
