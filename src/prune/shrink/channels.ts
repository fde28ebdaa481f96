/**
 * Channel coupling analysis for structured shrinking (DepGraph-style, at channel granularity).
 *
 * Every value with a channel axis (axis 1: NCHW activations, or the features of a 2-D value) gets
 * one element id per channel. Ops that keep channels and keep a zero channel at zero (Relu,
 * LeakyRelu, Tanh, HardSwish, Elu, Selu, Celu, Gelu, Mish, Softsign, Erf, Neg, Abs, Clip around 0, pools, BatchNormalization, Dropout, Identity, a Pad that pads only
 * spatial axes with zeros or by reflection) pass the ids through; Concat along axis 1 concatenates them; Flatten (and a Reshape that is a
 * flatten) repeats channel c's id over its H*W features; element-wise ops between activations
 * (Add, Sum, Sub, Mul, Max, Min; same channels, spatial broadcast allowed) unite the ids of their inputs channel by channel, so the channels
 * of a residual Add are coupled; a depthwise conv unites its output channels with the input
 * channel they read. A group-1 Conv creates fresh ids: its filters are the "sources" that can be
 * removed. Consumers that read channels they do not pass on (the next Conv's input channels, a
 * group-1 ConvTranspose's, a Gemm or MatMul after a Flatten) are sliced by the rewrite.
 *
 * A channel is blocked (cannot be removed) when it reaches a graph input or output, an op the
 * rewrite does not handle, an activation that does not keep zero at zero, a Reshape that is not
 * a flatten, a grouped (non-depthwise) conv; the reason names the node.
 */
import type { Graph, GraphNode } from '../../graph/ir.js';
import { inferShapes, type Shape } from '../../graph/shape-inference.js';
import type { Tensor } from '../../tensor.js';

const PASS_THROUGH = new Set([
  'Relu', 'LeakyRelu', 'Tanh', 'HardSwish', 'Dropout', 'Identity', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'Clip',
  // f(0) = 0 for each of these too (Sigmoid, HardSigmoid, Softplus, Exp do not keep zeros).
  'Elu', 'Selu', 'Celu', 'Gelu', 'Mish', 'Softsign', 'Erf', 'ThresholdedRelu', 'Neg', 'Abs',
]);
const ELEMENTWISE = new Set(['Add', 'Sum', 'Sub', 'Mul', 'Max', 'Min']);
const F32_MAX = 3.4028234663852886e38;

export interface FilterRef {
  conv: string;
  filter: number;
}

export interface ChannelAnalysis {
  shapes: Map<string, Shape>;
  /** Value name → element id of each channel (axis 1). */
  layout: Map<string, Int32Array>;
  /** Conv node name → the element id of each of its filters (output channels). */
  convOutputs: Map<string, Int32Array>;
  /** Root of an element's coupled set. */
  root(element: number): number;
  /** Root → why its channels cannot be removed (first reason found). */
  blocked: Map<number, string>;
  /** Root → the conv filters in the coupled set. */
  sources: Map<number, FilterRef[]>;
}

/** An initializer tensor as float32, or undefined. */
export function f32Init(graph: Graph, name: string | undefined): Tensor | undefined {
  if (!name) return undefined;
  const t = graph.initializers.get(name);
  return t && t.type === 'float32' ? t : undefined;
}

/** Whether the fused or standalone activation maps 0 to 0 (undefined: fine; a string: why not). */
function zeroKeeping(op: string, attrs: GraphNode['attrs'], prefix = ''): string | undefined {
  if (op === 'Relu' || op === 'Relu6' || op === 'LeakyRelu') return undefined;
  if (op === 'Clip') {
    const min = Number(attrs[`${prefix}min`] ?? -F32_MAX);
    const max = Number(attrs[`${prefix}max`] ?? F32_MAX);
    return min <= 0 && max >= 0 ? undefined : `Clip to [${min}, ${max}] does not keep a removed (zero) channel at zero`;
  }
  return `activation ${op} is not handled`;
}

export function analyzeChannels(graph: Graph): ChannelAnalysis {
  const shapes = inferShapes(graph);
  const parent: number[] = [];
  const blockedElement = new Map<number, string>();
  const sourceOf = new Map<number, FilterRef>();
  const layout = new Map<string, Int32Array>();
  const convOutputs = new Map<string, Int32Array>();

  const find = (e: number): number => {
    let r = e;
    while (parent[r] !== r) r = parent[r]!;
    while (parent[e] !== r) {
      const next = parent[e]!;
      parent[e] = r;
      e = next;
    }
    return r;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const fresh = (n: number): Int32Array => {
    const ids = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      ids[i] = parent.length;
      parent.push(parent.length);
    }
    return ids;
  };
  const block = (ids: Int32Array | undefined, reason: string): void => {
    if (!ids) return;
    for (const e of ids) if (!blockedElement.has(e)) blockedElement.set(e, reason);
  };
  const channelsOf = (value: string): number | undefined => {
    const s = shapes.get(value);
    return s && s.length >= 2 && typeof s[1] === 'number' ? s[1] : undefined;
  };
  /** Fresh ids for an output of known channel count; undefined otherwise. */
  const freshFor = (value: string): Int32Array | undefined => {
    const c = channelsOf(value);
    return c === undefined ? undefined : fresh(c);
  };
  const isInit = (name: string): boolean => graph.initializers.has(name);

  for (const input of graph.inputs) {
    const ids = freshFor(input.name);
    if (ids) {
      layout.set(input.name, ids);
      block(ids, `it reaches the graph input '${input.name}'`);
    }
  }

  for (const node of graph.nodes) {
    const where = `${node.op} '${node.name}'`;
    const ins = node.inputs.map((n) => (n === '' ? undefined : layout.get(n)));
    const out = node.outputs[0] ?? '';
    const unhandled = (why: string): void => {
      const reason = `it reaches ${where}, which shrinking cannot rewrite (${why})`;
      for (const ids of ins) block(ids, reason);
      for (const o of node.outputs) {
        if (!o) continue;
        const ids = freshFor(o);
        if (ids) {
          layout.set(o, ids);
          block(ids, reason);
        }
      }
    };
    const extraOutputs = node.outputs.slice(1).some((o) => o !== '');

    if (node.op === 'Conv') {
      const w = f32Init(graph, node.inputs[1]);
      const group = Number(node.attrs.group ?? 1);
      const biasOk = !node.inputs[2] || f32Init(graph, node.inputs[2]) !== undefined;
      if (!w || w.dims.length !== 4 || !biasOk || extraOutputs) {
        unhandled('its weights or bias are not float32 initializers');
        continue;
      }
      const x = ins[0];
      const cin = w.dims[1]! * group;
      const depthwise = group > 1 && w.dims[1] === 1 && group === cin && w.dims[0]! % group === 0;
      if (group !== 1 && !depthwise) {
        unhandled(`a grouped convolution with group ${group} that is not depthwise`);
        // Its filters are listed (as a group that cannot shrink), not hidden.
        const ids = layout.get(out);
        if (ids && ids.length === w.dims[0]) {
          ids.forEach((e, o) => sourceOf.set(e, { conv: node.name, filter: o }));
          convOutputs.set(node.name, ids);
        }
        continue;
      }
      if (depthwise && !x) {
        unhandled('the channels of its input are unknown');
        continue;
      }
      const ids = fresh(w.dims[0]!);
      ids.forEach((e, o) => sourceOf.set(e, { conv: node.name, filter: o }));
      if (depthwise) {
        const mult = w.dims[0]! / group;
        for (let o = 0; o < ids.length; o++) union(ids[o]!, x![Math.floor(o / mult)]!);
      }
      const act = node.attrs.kiln_activation;
      if (act !== undefined) {
        const why = zeroKeeping(String(act), node.attrs, 'kiln_activation_');
        if (why) block(ids, `it reaches ${where}, whose fused ${why}`);
      }
      layout.set(out, ids);
      convOutputs.set(node.name, ids);
    } else if (node.op === 'ConvTranspose') {
      // A consumer only: its input channels (weights axis 0) are sliced; its outputs stay.
      const w = f32Init(graph, node.inputs[1]);
      const biasOk = !node.inputs[2] || f32Init(graph, node.inputs[2]) !== undefined;
      if (!w || w.dims.length !== 4 || !biasOk || extraOutputs || Number(node.attrs.group ?? 1) !== 1) {
        unhandled('only a group-1 ConvTranspose with float32 initializer weights is handled');
        continue;
      }
      const ids = freshFor(out);
      if (ids) {
        layout.set(out, ids);
        block(ids, `it is an output channel of ${where} (only Conv filters are removed)`);
      }
    } else if (node.op === 'BatchNormalization') {
      const params = node.inputs.slice(1, 5).map((n) => f32Init(graph, n));
      if (!ins[0] || params.length !== 4 || params.some((p) => !p || p.size !== ins[0]!.length) || extraOutputs) {
        unhandled('its scale, bias, mean and variance are not per-channel float32 initializers');
        continue;
      }
      layout.set(out, ins[0]);
    } else if (PASS_THROUGH.has(node.op)) {
      if (!ins[0]) continue;
      if (extraOutputs || node.inputs.slice(1).some((n) => n !== '')) {
        unhandled('it has extra inputs or outputs');
        continue;
      }
      if (node.op === 'Clip') {
        const why = zeroKeeping('Clip', node.attrs);
        if (why) {
          unhandled(why);
          continue;
        }
      }
      layout.set(out, ins[0]);
    } else if (node.op === 'Pad') {
      if (!ins[0]) continue;
      const pads = (node.attrs.pads as number[] | undefined) ?? [];
      const rank = pads.length / 2;
      const mode = String(node.attrs.mode ?? 'constant');
      if (rank < 2 || pads[0] !== 0 || pads[1] !== 0 || pads[rank] !== 0 || pads[rank + 1] !== 0 || extraOutputs) {
        unhandled('it pads the batch or channel axis');
        continue;
      }
      if (mode === 'constant' && Number(node.attrs.value ?? 0) !== 0) {
        unhandled(`it pads with the constant ${String(node.attrs.value)}, which a removed (zero) channel would not have`);
        continue;
      }
      layout.set(out, ins[0]);
    } else if (ELEMENTWISE.has(node.op)) {
      // Activations of one rank, batch and channel count; other axes equal or 1 (broadcast over space).
      const s0 = shapes.get(node.inputs[0] ?? '');
      const fits = (s: Shape | undefined): boolean =>
        s0 !== undefined && s !== undefined && s.length === s0.length && s[0] === s0[0] && s[1] === s0[1] && s.every((d, k) => k < 2 || d === s0[k] || d === 1 || s0[k] === 1);
      const same = node.inputs.every((n, i) => n !== '' && !isInit(n) && ins[i] !== undefined && fits(shapes.get(n)));
      if (!same) {
        if (ins.some((ids) => ids !== undefined)) unhandled('its inputs are not activations of one shape (a constant or a broadcast operand)');
        continue;
      }
      for (const ids of ins.slice(1)) for (let c = 0; c < ids!.length; c++) union(ins[0]![c]!, ids![c]!);
      layout.set(out, ins[0]!);
    } else if (node.op === 'Concat') {
      if (ins.every((ids) => ids === undefined)) continue;
      if (Number(node.attrs.axis) !== 1 || ins.some((ids) => ids === undefined)) {
        unhandled(`it concatenates along axis ${String(node.attrs.axis)}, not the channels`);
        continue;
      }
      const ids = new Int32Array(ins.reduce((s, a) => s + a!.length, 0));
      let offset = 0;
      for (const a of ins) {
        ids.set(a!, offset);
        offset += a!.length;
      }
      layout.set(out, ids);
    } else if (node.op === 'Flatten' || node.op === 'Reshape') {
      const x = ins[0];
      if (!x) continue;
      const s = shapes.get(node.inputs[0]!);
      const spatial = s?.slice(2);
      if (!s || !spatial || spatial.some((d) => typeof d !== 'number')) {
        unhandled('the spatial size of its input is unknown');
        continue;
      }
      const hw = (spatial as number[]).reduce((a, b) => a * b, 1);
      if (node.op === 'Flatten' && Number(node.attrs.axis ?? 1) !== 1) {
        unhandled(`it flattens at axis ${String(node.attrs.axis)}, not 1`);
        continue;
      }
      if (node.op === 'Reshape') {
        const target = (node.attrs.shape as number[] | undefined) ?? [];
        const features = x.length * hw;
        const flat =
          target.length === 2 &&
          (target[1] === features || (target[1] === -1 && target[0] !== -1)) &&
          (target[0] === 0 || target[0] === -1 || target[0] === s[0]);
        if (!flat) {
          unhandled(`its fixed shape [${target.join(', ')}] hard-codes the channels of an input of shape [${s.join(', ')}]`);
          continue;
        }
      }
      const ids = new Int32Array(x.length * hw);
      for (let c = 0; c < x.length; c++) ids.fill(x[c]!, c * hw, (c + 1) * hw);
      layout.set(out, ids);
    } else if (node.op === 'Gemm' || node.op === 'MatMul') {
      const w = f32Init(graph, node.inputs[1]);
      const rankA = shapes.get(node.inputs[0] ?? '')?.length;
      const ok = w !== undefined && w.dims.length === 2 && rankA === 2 && Number(node.attrs.transA ?? 0) === 0 && !extraOutputs && !ins.slice(1).some((ids) => ids);
      if (!ok) {
        if (ins.some((ids) => ids !== undefined)) unhandled('only a Gemm or MatMul with a 2-D input and constant 2-D weights is handled');
        continue;
      }
      const ids = freshFor(out);
      if (ids) {
        layout.set(out, ids);
        block(ids, `it is an output feature of ${where} (only Conv filters are removed)`);
      }
    } else if (ins.some((ids) => ids !== undefined)) {
      unhandled('not an op that keeps channels');
    }
  }

  for (const o of graph.outputs) block(layout.get(o.name), `it reaches the graph output '${o.name}'`);

  const blocked = new Map<number, string>();
  for (const [e, reason] of blockedElement) {
    const r = find(e);
    if (!blocked.has(r)) blocked.set(r, reason);
  }
  const sources = new Map<number, FilterRef[]>();
  for (const [e, ref] of sourceOf) {
    const r = find(e);
    const list = sources.get(r);
    if (list) list.push(ref);
    else sources.set(r, [ref]);
  }
  return { shapes, layout, convOutputs, root: find, blocked, sources };
}
