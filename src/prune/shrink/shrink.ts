/**
 * Structured shrinking on the Graph IR: removing Conv filters rewrites the graph into an ordinary
 * smaller dense model (channels.ts says which channels are coupled and which cannot move).
 *
 * - `shrinkGraph(graph, removals)` removes the given filters, and with them every channel coupled
 *   to them (through residual Adds, Concats, depthwise convs): the convs' output channels and
 *   biases, BatchNormalization parameters, the next convs' (and ConvTransposes') input channels, depthwise convs'
 *   channels and `group`, the input features (blocks of H*W per channel) of a Gemm / MatMul after
 *   a Flatten, and the shape of a Reshape that flattens.
 * - `planShrink` / `shrinkByImportance` choose the filters: per coupled group (the channels that
 *   share the same set of convs), the importance of a channel is the sum over the group's convs of
 *   the filter's score (default: its L1 norm), and the lowest `fraction` are removed, the kept
 *   count rounded up to a multiple of `roundTo`. Groups that cannot shrink are skipped, with the reason.
 * - `planZeroFilters` chooses the filters a filter-pruned graph already zeroed (the CLI's
 *   `kiln prune --pattern filter --shrink` after fine-tuning).
 * - `maskGraph(graph, removals)` is the masked model the shrunk one equals: the same filters (and
 *   every coupled one) zeroed, biases zeroed, BatchNormalization beta and mean zeroed on those
 *   channels, so the removed channels are exactly 0 everywhere.
 *
 * Requests that cannot be honoured throw a KilnError ERR_KILN_CANNOT_SHRINK naming the node and
 * why; a wrong graph is never produced.
 */
import { ErrorCode, KilnError, KilnRangeError, KilnTypeError } from '../../errors.js';
import type { Graph, GraphNode } from '../../graph/ir.js';
import { freshName } from '../../graph/passes/uses.js';
import { inferShapes } from '../../graph/shape-inference.js';
import { Tensor } from '../../tensor.js';
import { analyzeChannels, f32Init, type ChannelAnalysis } from './channels.js';

/** Conv node name → indices of the filters (output channels) to remove. */
export type Removals = Map<string, readonly number[]> | Record<string, readonly number[]>;

export interface ModelSize {
  /** Elements of all initializers. */
  parameters: number;
  /** Multiply-accumulates per image of Conv, Gemm and MatMul nodes. */
  macs: number;
}

export interface ShrinkReport {
  /** Conv → the filters removed (the requested ones and every coupled one), ascending. */
  removedFilters: Record<string, number[]>;
  /** Conv → output channels before and after. */
  channels: Record<string, { before: number; after: number }>;
  before: ModelSize;
  after: ModelSize;
}

export interface ShrinkGroup {
  /** The convs whose filters form the group (coupled channel by channel). */
  convs: string[];
  channels: number;
  removed: number;
  /** Why the group is left as it is (it cannot shrink). */
  skipped?: string;
}

export interface ShrinkPlanOptions {
  /** Fraction of each group's channels to remove, in [0, 1). */
  fraction: number;
  /**
   * Round each group's kept channel count up to a multiple of this (default 1), so the shrunk
   * layers stay on full-width kernels (e.g. 16: one AVX-512 register of fp32 channels). A group
   * with fewer channels than the rounded count is left whole.
   */
  roundTo?: number;
  /**
   * The convs that may shrink (names, or a predicate on the Conv node); default all. A group with
   * a conv outside them is skipped.
   */
  layers?: readonly string[] | ((node: GraphNode) => boolean);
  /** Score per filter for some convs (higher = more important); other convs use the filter's L1 norm. */
  scores?: Map<string, ArrayLike<number>> | Record<string, ArrayLike<number>>;
}

export interface ShrinkPlan {
  removals: Map<string, number[]>;
  groups: ShrinkGroup[];
}

function cannot(message: string): KilnError {
  return new KilnError(ErrorCode.CANNOT_SHRINK, message);
}

function entries<T>(m: Map<string, T> | Record<string, T>): [string, T][] {
  return m instanceof Map ? [...m] : Object.entries(m);
}

/** Parameters and MACs per image, counted as `kiln info` counts them for a graph. */
export function modelSize(graph: Graph): ModelSize {
  const shapes = inferShapes(graph);
  let parameters = 0;
  for (const t of graph.initializers.values()) parameters += t.size;
  let macs = 0;
  for (const node of graph.nodes) {
    const w = graph.initializers.get(node.inputs[1] ?? '');
    const outShape = shapes.get(node.outputs[0] ?? '')?.slice(1) ?? [];
    if (!w || outShape.some((d) => typeof d !== 'number')) continue;
    const dims = outShape as number[];
    if (node.op === 'Conv') macs += dims.reduce((a, b) => a * b, 1) * w.dims.slice(1).reduce((a, b) => a * b, 1);
    else if (node.op === 'Gemm' || node.op === 'MatMul') macs += w.size * (dims.length > 1 ? dims.slice(0, -1).reduce((a, b) => a * b, 1) : 1);
  }
  return { parameters, macs };
}

/** The coupled roots to remove for `removals`, validated. */
function removedRoots(graph: Graph, a: ChannelAnalysis, removals: Removals): Set<number> {
  if (!(removals instanceof Map) && (typeof removals !== 'object' || removals === null)) {
    throw new KilnTypeError(`Expected removals to be a Map or object of conv name -> filter indices but received ${typeof removals}`);
  }
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const roots = new Set<number>();
  for (const [name, filters] of entries(removals)) {
    const node = byName.get(name);
    if (!node) throw new KilnRangeError(`Expected removals to name Conv nodes of the graph but '${name}' is not a node of it`);
    if (node.op !== 'Conv') throw cannot(`Cannot shrink ${node.op} '${name}': only the filters of Conv nodes can be removed`);
    const ids = a.convOutputs.get(name);
    if (!ids) throw cannot(`Cannot shrink Conv '${name}': its weights are not a float32 initializer of rank 4 or it is a grouped convolution`);
    if (!Array.isArray(filters)) throw new KilnTypeError(`Expected removals of '${name}' to be an array of filter indices`);
    for (const f of filters) {
      if (!Number.isInteger(f) || f < 0 || f >= ids.length) {
        throw new KilnRangeError(`Expected filter indices of Conv '${name}' to be integers in [0, ${ids.length - 1}] but received ${String(f)}`);
      }
      const r = a.root(ids[f]!);
      const why = a.blocked.get(r);
      if (why) throw cannot(`Cannot remove filter ${f} of Conv '${name}': ${why}`);
      roots.add(r);
    }
  }
  return roots;
}

/** Value name → positions (axis 1) kept, for values that lose channels. */
function keptPositions(graph: Graph, a: ChannelAnalysis, roots: Set<number>): Map<string, Int32Array> {
  const writer = new Map<string, GraphNode>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) writer.set(o, n);
  const kept = new Map<string, Int32Array>();
  for (const [value, ids] of a.layout) {
    const keep: number[] = [];
    for (let i = 0; i < ids.length; i++) if (!roots.has(a.root(ids[i]!))) keep.push(i);
    if (keep.length === ids.length) continue;
    if (keep.length === 0) {
      const node = writer.get(value);
      throw cannot(`Cannot remove every channel of '${value}'${node ? ` (the output of ${node.op} '${node.name}')` : ''}: at least one must stay`);
    }
    kept.set(value, Int32Array.from(keep));
  }
  return kept;
}

/** `t` with only the `keep` indices along `axis`. */
function sliceAxis(t: Tensor, axis: number, keep: Int32Array): Tensor {
  const dims = t.dims.slice();
  const outer = dims.slice(0, axis).reduce((p, d) => p * d, 1);
  const inner = dims.slice(axis + 1).reduce((p, d) => p * d, 1);
  const n = dims[axis]!;
  const src = t.data as Float32Array;
  const dst = new Float32Array(outer * keep.length * inner);
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const k of keep) {
      const from = (i * n + k) * inner;
      dst.set(src.subarray(from, from + inner), o);
      o += inner;
    }
  }
  dims[axis] = keep.length;
  return new Tensor('float32', dst, dims);
}

function removedOf(kept: Int32Array | undefined, n: number): number[] {
  if (!kept) return [];
  const keep = new Set(kept);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (!keep.has(i)) out.push(i);
  return out;
}

function reportOf(graph: Graph, a: ChannelAnalysis, kept: Map<string, Int32Array>, result: Graph): ShrinkReport {
  const removedFilters: Record<string, number[]> = {};
  const channels: Record<string, { before: number; after: number }> = {};
  for (const node of graph.nodes) {
    const ids = a.convOutputs.get(node.name);
    if (!ids) continue;
    const k = kept.get(node.outputs[0]!);
    if (!k) continue;
    removedFilters[node.name] = removedOf(k, ids.length);
    channels[node.name] = { before: ids.length, after: k.length };
  }
  return { removedFilters, channels, before: modelSize(graph), after: modelSize(result) };
}

/**
 * Removes the filters in `removals` (conv name → filter indices) and every channel coupled to
 * them; returns the smaller graph (the input is not modified) and what was removed.
 *
 * @throws KilnRangeError ERR_KILN_INVALID_ARG for an unknown node or a filter index out of range;
 *   KilnError ERR_KILN_CANNOT_SHRINK for a node that is not a Conv, a channel that cannot be
 *   removed (it reaches a graph output, a Reshape that hard-codes it, an op shrinking does not
 *   handle: the message names it) or a removal that would leave a value with no channel.
 */
export function shrinkGraph(graph: Graph, removals: Removals): { graph: Graph; report: ShrinkReport } {
  const a = analyzeChannels(graph);
  const kept = keptPositions(graph, a, removedRoots(graph, a, removals));
  const store = initializerStore(graph);
  const { initializers } = store;
  const put = store.put;
  const nodes = graph.nodes.map((node): GraphNode => {
    const kin = kept.get(node.inputs[0] ?? '');
    const kout = kept.get(node.outputs[0] ?? '');
    if (!kin && !kout) return node;
    const inputs = node.inputs.slice();
    let attrs = node.attrs;
    if (node.op === 'Conv') {
      let w = initializers.get(node.inputs[1]!)!;
      const group = Number(node.attrs.group ?? 1);
      if (kout) w = sliceAxis(w, 0, kout);
      if (group === 1 && kin) w = sliceAxis(w, 1, kin);
      if (group !== 1 && kin) attrs = { ...attrs, group: kin.length };
      inputs[1] = put(node.inputs[1]!, w);
      if (kout && node.inputs[2]) inputs[2] = put(node.inputs[2], sliceAxis(initializers.get(node.inputs[2])!, 0, kout));
    } else if (node.op === 'BatchNormalization') {
      for (let i = 1; i < 5; i++) inputs[i] = put(node.inputs[i]!, sliceAxis(initializers.get(node.inputs[i]!)!, 0, kin!));
    } else if (node.op === 'ConvTranspose' && kin) {
      inputs[1] = put(node.inputs[1]!, sliceAxis(initializers.get(node.inputs[1]!)!, 0, kin));
    } else if ((node.op === 'Gemm' || node.op === 'MatMul') && kin) {
      const transB = Number(node.attrs.transB ?? 0) !== 0;
      inputs[1] = put(node.inputs[1]!, sliceAxis(initializers.get(node.inputs[1]!)!, transB ? 1 : 0, kin));
    } else if (node.op === 'Reshape' && kout) {
      const shape = (node.attrs.shape as number[]).slice();
      if (shape[1] !== -1) shape[1] = kout.length;
      attrs = { ...attrs, shape };
    }
    return { ...node, inputs, attrs };
  });
  const result: Graph = { ...graph, nodes, initializers: withoutOrphans(graph, nodes, initializers) };
  return { graph: result, report: reportOf(graph, a, kept, result) };
}

/**
 * The masked model that `shrinkGraph(graph, removals)` equals: the removed filters (and every
 * coupled one) and their biases zeroed, and BatchNormalization beta and mean zeroed on those
 * channels, so that every removed channel is exactly 0. Same errors as shrinkGraph.
 */
export function maskGraph(graph: Graph, removals: Removals): Graph {
  const a = analyzeChannels(graph);
  const kept = keptPositions(graph, a, removedRoots(graph, a, removals));
  const store = initializerStore(graph);
  /** Zeroes the rows `removed` (axis 0) of input `index` of `node`; returns the input's name. */
  const zeroRows = (node: GraphNode, index: number, removed: number[]): string => {
    const name = node.inputs[index] ?? '';
    if (!name) return name;
    const t = graph.initializers.get(name)!;
    const data = Float32Array.from(t.data as Float32Array);
    const per = data.length / t.dims[0]!;
    for (const r of removed) data.fill(0, r * per, (r + 1) * per);
    return store.put(name, new Tensor('float32', data, t.dims));
  };
  const nodes = graph.nodes.map((node): GraphNode => {
    let removed: number[] = [];
    let rows: number[] = [];
    if (node.op === 'Conv' && a.convOutputs.has(node.name)) {
      removed = removedOf(kept.get(node.outputs[0]!), a.convOutputs.get(node.name)!.length);
      rows = [1, 2];
    } else if (node.op === 'BatchNormalization' && kept.has(node.inputs[0]!)) {
      removed = removedOf(kept.get(node.inputs[0]!), a.layout.get(node.inputs[0]!)!.length);
      rows = [2, 3];
    }
    if (removed.length === 0) return node;
    const inputs = node.inputs.slice();
    for (const i of rows) inputs[i] = zeroRows(node, i, removed);
    return { ...node, inputs };
  });
  return { ...graph, nodes, initializers: withoutOrphans(graph, nodes, store.initializers) };
}

/** `initializers` less those the original nodes read and the rewritten ones no longer do. */
function withoutOrphans(graph: Graph, nodes: GraphNode[], initializers: Map<string, Tensor>): Map<string, Tensor> {
  const read = new Set(nodes.flatMap((n) => n.inputs));
  for (const o of graph.outputs) read.add(o.name);
  for (const n of graph.nodes) for (const i of n.inputs) if (!read.has(i)) initializers.delete(i);
  return initializers;
}

/**
 * The initializers of a rewritten graph: a rewritten tensor replaces the original in place when
 * only one node input reads it, else it is stored under a fresh name (the original stays for the
 * other readers).
 */
function initializerStore(graph: Graph): { initializers: Map<string, Tensor>; put(name: string, t: Tensor): string } {
  const uses = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) if (i) uses.set(i, (uses.get(i) ?? 0) + 1);
  const initializers = new Map(graph.initializers);
  const taken = new Set<string>();
  return {
    initializers,
    put(name, t) {
      if ((uses.get(name) ?? 0) <= 1) {
        initializers.set(name, t);
        return name;
      }
      const fresh = freshName(graph, `${name}_shrunk`, taken);
      initializers.set(fresh, t);
      return fresh;
    },
  };
}

/** L1 norm of each filter of a conv. */
function l1(w: Tensor): Float64Array {
  const out = new Float64Array(w.dims[0]!);
  const data = w.data as Float32Array;
  const per = data.length / out.length;
  for (let o = 0; o < out.length; o++) {
    let s = 0;
    for (let i = o * per; i < (o + 1) * per; i++) s += Math.abs(data[i]!);
    out[o] = s;
  }
  return out;
}

/**
 * The convs a plan may shrink, from `options.layers`.
 * @throws RangeError ERR_KILN_INVALID_ARG for a name that is no node of the graph; TypeError
 *   ERR_KILN_INVALID_ARG for a node that exists but has no filters to remove (not a Conv: the
 *   message names its op) or a Conv whose filters cannot be removed (grouped, weights not float32)
 */
function selectedConvs(graph: Graph, a: ChannelAnalysis, layers: ShrinkPlanOptions['layers']): (conv: string) => boolean {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  if (layers === undefined) return () => true;
  if (typeof layers === 'function') return (conv) => layers(byName.get(conv)!) === true;
  if (!Array.isArray(layers)) throw new KilnTypeError('Expected options.layers to be an array of Conv names or a function');
  const convs = graph.nodes.filter((n) => a.convOutputs.has(n.name)).map((n) => `'${n.name}'`);
  const list = convs.length > 8 ? `${convs.slice(0, 8).join(', ')} ... (${convs.length})` : convs.join(', ') || 'none';
  layers.forEach((name, i) => {
    const node = typeof name === 'string' ? byName.get(name) : undefined;
    if (!node) throw new KilnRangeError(`Expected options.layers[${i}] to name a Conv node of the graph but '${String(name)}' is not a node of it; its Conv nodes are ${list}`);
    if (node.op !== 'Conv') {
      throw new KilnTypeError(`Expected options.layers[${i}] to name a Conv node but '${name}' is a ${node.op} node, which has no filters to remove; its Conv nodes are ${list}`);
    }
    if (!a.convOutputs.has(name)) throw new KilnTypeError(`Expected options.layers[${i}] to name a Conv whose filters can be removed but Conv '${name}' has weights that are not a float32 initializer of rank 4`);
  });
  const set = new Set<string>(layers);
  return (conv) => set.has(conv);
}

/** The coupled groups of a graph: the roots of the channels that share one set of source convs. */
function coupledGroups(a: ChannelAnalysis): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  for (const [root, refs] of a.sources) {
    const key = [...new Set(refs.map((r) => r.conv))].sort().join('\n');
    const list = groups.get(key);
    if (list) list.push(root);
    else groups.set(key, [root]);
  }
  return groups;
}

/** `roundTo` checked: an integer >= 1 (default 1). */
function checkRoundTo(value: unknown): number {
  const roundTo = value ?? 1;
  if (typeof roundTo !== 'number' || !Number.isInteger(roundTo) || roundTo < 1) {
    throw new KilnRangeError(`Expected options.roundTo to be an integer >= 1 but received ${String(roundTo)}`);
  }
  return roundTo;
}

/** The kept count `keep` of a group of `channels` rounded up to a multiple of `roundTo` (all of them when that is more). */
function roundKept(keep: number, channels: number, roundTo: number): number {
  return Math.min(channels, Math.ceil(Math.max(1, keep) / roundTo) * roundTo);
}

/**
 * Runs `choose` on every coupled group the options allow to shrink and gathers its drops into
 * removals; groups with a conv outside `layers` or a blocked channel are reported as skipped.
 */
function planGroups(graph: Graph, a: ChannelAnalysis, layers: ShrinkPlanOptions['layers'], choose: (roots: number[]) => number[]): ShrinkPlan {
  const selected = selectedConvs(graph, a, layers);
  const removals = new Map<string, number[]>();
  const report: ShrinkGroup[] = [];
  for (const [key, roots] of coupledGroups(a)) {
    const convs = key.split('\n');
    const outside = convs.find((c) => !selected(c));
    if (outside !== undefined) {
      report.push({ convs, channels: roots.length, removed: 0, skipped: `Conv '${outside}' is not among options.layers` });
      continue;
    }
    const blockedRoot = roots.find((r) => a.blocked.has(r));
    if (blockedRoot !== undefined) {
      report.push({ convs, channels: roots.length, removed: 0, skipped: a.blocked.get(blockedRoot) });
      continue;
    }
    const drop = choose(roots);
    for (const r of drop) {
      for (const ref of a.sources.get(r)!) {
        const list = removals.get(ref.conv);
        if (list) list.push(ref.filter);
        else removals.set(ref.conv, [ref.filter]);
      }
    }
    report.push({ convs, channels: roots.length, removed: drop.length });
  }
  for (const list of removals.values()) list.sort((x, y) => x - y);
  return { removals, groups: report };
}

/**
 * Chooses the filters to remove: for each coupled group, the lowest-importance `fraction` of its
 * channels (importance summed over the group's convs), the kept count rounded up to a multiple of
 * `roundTo` (a group smaller than that multiple is left whole). Groups that cannot shrink are
 * listed with `skipped` and left dense.
 * @throws RangeError ERR_KILN_INVALID_ARG for a fraction outside [0, 1), a roundTo that is not a
 *   positive integer, a layer name that is no node of the graph, scores of the wrong length;
 *   TypeError ERR_KILN_INVALID_ARG for a layer that is a node but not a Conv (the message names its op)
 */
export function planShrink(graph: Graph, options: ShrinkPlanOptions): ShrinkPlan {
  if (typeof options !== 'object' || options === null) throw new KilnTypeError('Expected shrink options to be an object');
  const fraction = options.fraction;
  if (typeof fraction !== 'number' || !(fraction >= 0 && fraction < 1)) {
    throw new KilnRangeError(`Expected options.fraction to be a number in [0, 1) but received ${String(fraction)}`);
  }
  const roundTo = checkRoundTo(options.roundTo);
  const a = analyzeChannels(graph);
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const given = new Map(options.scores ? entries(options.scores) : []);
  for (const [name, s] of given) {
    const ids = a.convOutputs.get(name);
    if (!ids) throw new KilnRangeError(`Expected options.scores to name Conv nodes of the graph but '${name}' is not one`);
    if (s.length !== ids.length) throw new KilnRangeError(`Expected ${ids.length} scores for Conv '${name}' but received ${s.length}`);
    for (let i = 0; i < s.length; i++) {
      if (typeof s[i] !== 'number' || !Number.isFinite(s[i])) throw new KilnRangeError(`Expected finite scores for Conv '${name}' but score ${i} is ${String(s[i])}`);
    }
  }
  const scoreCache = new Map<string, ArrayLike<number>>();
  const score = (conv: string, filter: number): number => {
    let s = given.get(conv) ?? scoreCache.get(conv);
    if (!s) {
      s = l1(graph.initializers.get(byName.get(conv)!.inputs[1]!)!);
      scoreCache.set(conv, s);
    }
    return Number(s[filter]);
  };
  return planGroups(graph, a, options.layers, (roots) => {
    const keep = roundKept(roots.length - Math.floor(fraction * roots.length), roots.length, roundTo);
    const ranked = roots.map((r) => ({ r, s: a.sources.get(r)!.reduce((t, ref) => t + score(ref.conv, ref.filter), 0) }));
    ranked.sort((x, y) => x.s - y.s || x.r - y.r);
    return ranked.slice(0, roots.length - keep).map(({ r }) => r);
  });
}

/** Options of {@link planZeroFilters}. */
export interface ZeroFilterPlanOptions {
  /** Keep each group's channel count at a multiple of this (default 1): some zero channels then stay. */
  roundTo?: number;
  /** The convs that may shrink (names, or a predicate on the Conv node); default all. */
  layers?: ShrinkPlanOptions['layers'];
}

/**
 * The removals that turn a filter-pruned graph (e.g. `prune()` with pattern 'filter', lowered
 * with `toGraph`) into a smaller dense one: in each coupled group, the channels whose every
 * filter is exactly zero, weights and bias. The channels removed are 0 before any
 * BatchNormalization, so the shrunk graph equals `maskGraph(graph, plan.removals)`, which is the
 * pruned graph itself unless a BatchNormalization turns a zero channel into a constant (that
 * constant is dropped, as a BatchNorm of a removed filter's output is). The kept count is rounded
 * up to a multiple of `roundTo` by keeping zero channels; at least one channel of a group stays.
 * @throws the errors of {@link planShrink} for `roundTo` and `layers`
 */
export function planZeroFilters(graph: Graph, options: ZeroFilterPlanOptions = {}): ShrinkPlan {
  if (typeof options !== 'object' || options === null) throw new KilnTypeError('Expected options to be an object');
  const roundTo = checkRoundTo(options.roundTo);
  const a = analyzeChannels(graph);
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const zeroFilter = (conv: string, filter: number): boolean => {
    const node = byName.get(conv)!;
    const w = graph.initializers.get(node.inputs[1]!)!;
    const per = w.size / w.dims[0]!;
    const data = w.data as Float32Array;
    for (let i = filter * per; i < (filter + 1) * per; i++) if (data[i] !== 0) return false;
    const bias = f32Init(graph, node.inputs[2]);
    return !bias || bias.data[filter] === 0;
  };
  return planGroups(graph, a, options.layers, (roots) => {
    const zero = roots.filter((r) => a.sources.get(r)!.every((ref) => zeroFilter(ref.conv, ref.filter)));
    const keep = roundKept(roots.length - zero.length, roots.length, roundTo);
    return zero.slice(0, roots.length - keep);
  });
}

/** `planShrink` then `shrinkGraph`: the smaller graph, what was removed, and the groups. */
export function shrinkByImportance(graph: Graph, options: ShrinkPlanOptions): { graph: Graph; report: ShrinkReport; plan: ShrinkPlan } {
  const plan = planShrink(graph, options);
  const { graph: shrunk, report } = shrinkGraph(graph, plan.removals);
  return { graph: shrunk, report, plan };
}
