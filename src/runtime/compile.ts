/**
 * Graph → native plan spec: lowers every node (src/runtime/lowering/, one file per op family)
 * with per-image shape inference, then lists graph inputs and outputs as plan values.
 *
 * Conventions the importer can rely on (see also plan.ts):
 * - the leading dimension of every graph input is the batch (symbolic, e.g. 'N', or a fixed number
 *   that feeds must then match); other dimensions must be numbers, or given in `inputShapes`
 *   (graphs whose inputs share no batch are rewritten first by unit-batch.ts, see session.ts);
 * - weights, shapes, axes, pads, Clip bounds must be initializers (constants folded beforehand);
 * - Conv/ConvTranspose/Gemm may carry `kiln_activation` ('Relu' | 'Relu6' | 'LeakyRelu' | 'Clip')
 *   with `kiln_activation_alpha` / `kiln_activation_min` / `kiln_activation_max`; a SiLU
 *   (Sigmoid and Mul) or a HardSwish after a float Conv becomes that Conv step's plan activation
 *   'Silu' or 'HardSwish', and a Relu after a float Add (a residual block's) that Add step's 'Relu';
 *   an Add of a float Conv's output and an earlier value becomes that Conv step's `residual` input;
 * - Softmax/LogSoftmax use opset-13 semantics (one `axis`, default -1).
 * Every node the plan cannot run is reported at once in one ERR_KILN_UNSUPPORTED_OP error.
 */
import { ErrorCode, KilnError } from '../errors.js';
import type { Attrs, Graph, GraphNode } from '../graph/ir.js';
import { activationOf } from '../graph/passes/fuse-activation.js';
import { validateGraph } from '../graph/validate-graph.js';
import { type LoweringEnv, NodeLowering, Unsupported, type ValueRef, shapeText } from './lowering/context.js';
import { lowerConvPool } from './lowering/conv.js';
import { lowerBatchNorm } from './lowering/pool.js';
import { lowerBatchNormU8, lowerChannelShuffleQ, lowerDequantize, lowerQLinearConvPool, lowerQuantize } from './lowering/quant.js';
import { INT8_OPS } from '../graph/int8-ir.js';
import { LOWERINGS } from './lowering/index.js';
import { lowerCast } from './lowering/compare.js';
import type { PlanSpec, PlanStepSpec } from './plan.js';

export interface CompiledIo {
  name: string;
  /** Per-image shape (the batch is the leading dimension at run time). */
  shape: number[];
}

export interface CompiledGraph {
  spec: PlanSpec;
  inputs: CompiledIo[];
  outputs: CompiledIo[];
  /** Set when the graph fixes its batch size (a number as the inputs' leading dimension). */
  fixedBatch?: number;
  /** Multiply-accumulates per image (elementwise steps count one per output element). */
  macsPerImage: number;
  /** The same per plan step (spec.steps order). */
  stepMacs: number[];
  /** Per plan step: whether its multiply-accumulates run on int8 kernels. */
  stepInt8: boolean[];
  /** Estimated cost per image in float32 FLOPs (int8 multiply-adds count a quarter): picks inline or runner-thread runs (runtime/async-policy.ts). */
  flopsPerImage: number;
}

export interface CompileOptions {
  /** Per-image shapes of inputs whose non-batch dimensions are symbolic. */
  inputShapes?: Record<string, readonly number[]>;
  /** Threads a run may use (0 = the whole pool). */
  maxThreads?: number;
  /** Let the threads that ran a run poll for the next one (default true; see SessionOptions.allowSpinning). */
  allowSpinning?: boolean;
  /** Run a Conv and the MaxPool/AveragePool reading it as one step (default true). */
  fuseConvPool?: boolean;
  /**
   * Let 3x3 stride-1 convolutions run as Winograd F(2x2, 3x3) or F(4x4, 3x3) where the CPU has
   * AVX-512 (default false): 2.25x or 4x fewer multiplies, results within ~1e-6 relative of the direct
   * sum but not bit-identical.
   */
  winograd?: boolean;
  /**
   * fp32 Conv steps with at least half their weights zero may run on the sparse kernels (default
   * 'never'): 'auto' keeps the faster per layer, timed when the plan is built; 'always' takes sparse.
   */
  sparseKernels?: SparseKernels;
}

/** The values of CompileOptions.sparseKernels / SessionOptions.sparseKernels. */
export const SPARSE_KERNELS = ['auto', 'always', 'never'] as const;
export type SparseKernels = (typeof SPARSE_KERNELS)[number];

interface Issue {
  node: GraphNode;
  reason: string;
}

/** Whether every non-batch input dimension is a number (the plan can be built ahead of any feed). */
export function hasStaticShapes(graph: Graph): boolean {
  return graph.inputs.every((v) => v.shape.slice(1).every((d) => typeof d === 'number'));
}

/** The nodes reading each value (the fusions below look one or two readers ahead). */
function readersOf(graph: Graph): Map<string, GraphNode[]> {
  const readers = new Map<string, GraphNode[]>();
  for (const node of graph.nodes) for (const i of node.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), node]);
  return readers;
}

/** The one node reading a value, when it has exactly one reader and is not a graph output. */
type SoleReader = (value: string) => GraphNode | undefined;

function soleReaderOf(graph: Graph, readers: ReadonlyMap<string, GraphNode[]>): SoleReader {
  const outputs = new Set(graph.outputs.map((o) => o.name));
  return (value) => {
    const r = readers.get(value) ?? [];
    return r.length === 1 && !outputs.has(value) ? r[0] : undefined;
  };
}

/** Values every reader of which is a QLinearGemm taking them as its input (not graph outputs). */
function gemmOnlyValues(graph: Graph, readers: ReadonlyMap<string, GraphNode[]>): Set<string> {
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const out = new Set<string>();
  for (const [value, nodes] of readers) {
    if (!outputs.has(value) && nodes.every((n) => n.op === 'QLinearGemm' && n.inputs[0] === value && !n.inputs.slice(1).includes(value))) out.add(value);
  }
  return out;
}

export function compileGraph(graph: Graph, options: CompileOptions = {}): CompiledGraph {
  validateGraph(graph);
  const readers = readersOf(graph);
  const env: LoweringEnv = {
    values: [], steps: [], macs: 0, bound: new Map(), initializers: graph.initializers, fixedBatch: undefined,
    winograd: options.winograd === true, sparseKernels: options.sparseKernels ?? 'never', gemmOnlyValues: gemmOnlyValues(graph, readers),
  };
  const issues: Issue[] = [];
  const inputs = bindInputs(graph, env, options);

  const used = new Set<string>(graph.outputs.map((o) => o.name));
  for (const node of graph.nodes) for (const i of node.inputs) used.add(i);
  const poisoned = new Set<string>();
  const sole = soleReaderOf(graph, readers);
  const pools = options.fuseConvPool === false ? new Map<GraphNode, GraphNode>() : convPoolPairs(graph, used, sole);
  const fusedPools = new Set<GraphNode>();
  const shuffles = channelShuffles(graph, sole);
  const silus = siluPairs(graph, sole);
  const u8Norms = u8BatchNorms(graph, sole);
  const normActs = normActivations(graph, sole);
  for (const node of graph.nodes) {
    if (fusedPools.has(node)) continue;
    const normAct = normActs.get(node);
    if (normAct && !node.inputs.some((i) => poisoned.has(i)) && tryNormActivation(node, normAct, env)) {
      fusedPools.add(normAct.act);
      continue;
    }
    const norm = u8Norms.get(node);
    if (norm && !node.inputs.some((i) => poisoned.has(i)) && tryBatchNormU8(node, norm, env)) {
      fusedPools.add(norm.bn).add(norm.q);
      if (norm.relu) fusedPools.add(norm.relu);
      continue;
    }
    const silu = silus.get(node);
    if (silu && !node.inputs.some((i) => poisoned.has(i)) && trySilu(node, silu, env, onlyReadBy(graph, readers, node.inputs[0]!, [node, silu]))) {
      fusedPools.add(silu);
      continue;
    }
    if ((node.op === 'HardSwish' || node.op === 'Relu') && !node.inputs.some((i) => poisoned.has(i)) && onlyReadBy(graph, readers, node.inputs[0]!, [node])) {
      const x = env.bound.get(node.inputs[0]!);
      if (x && fuseIntoProducer(x, node.op, env)) {
        env.bound.set(node.outputs[0]!, x);
        continue;
      }
    }
    if (node.op === 'Add' && !node.inputs.some((i) => poisoned.has(i)) && tryResidualConv(graph, readers, node, env)) continue;
    const shuffle = shuffles.get(node);
    if (shuffle && !node.inputs.some((i) => poisoned.has(i)) && tryChannelShuffle(node, shuffle[0], shuffle[1], env)) {
      fusedPools.add(shuffle[0]).add(shuffle[1]);
      continue;
    }
    const pool = pools.get(node);
    if (pool && !node.inputs.some((i) => poisoned.has(i)) && tryFuse(node, pool, env)) {
      fusedPools.add(pool);
      continue;
    }
    const lower = LOWERINGS[node.op];
    const blocked = node.inputs.some((i) => poisoned.has(i));
    if (!lower || blocked) {
      if (!lower) issues.push({ node, reason: 'not implemented' });
      node.outputs.forEach((o) => poisoned.add(o));
      continue;
    }
    try {
      const refs = lower(new NodeLowering(node, env));
      node.outputs.forEach((out, i) => {
        if (!out) return;
        if (i < refs.length) env.bound.set(out, refs[i]);
        else if (used.has(out)) throw new Unsupported(`output ${i} ('${out}') is not computed by the runtime`);
        else poisoned.add(out);
      });
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      issues.push({ node, reason: e.message });
      node.outputs.forEach((o) => poisoned.add(o));
    }
  }
  if (issues.length) {
    const types = [...new Set(issues.map((i) => i.node.op))];
    throw new KilnError(
      ErrorCode.UNSUPPORTED_OP,
      `Expected operators the Kiln runtime supports but received ${issues.length} node(s) it cannot run ` +
        `(op types: ${types.join(', ')}): ` +
        issues.map((i) => `${i.node.op} '${i.node.name}' (${i.reason})`).join('; '),
    );
  }

  const outputIds = new Set<number>();
  const inputIds = new Set(inputs.map((i) => i.ref.id));
  const outputs = graph.outputs.map((o) => {
    let ref = env.bound.get(o.name);
    if (!ref) {
      throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Expected graph outputs computed per image but received '${o.name}', a constant`);
    }
    if (ref.quant && (o.dtype === 'uint8' || o.dtype === 'int8') && o.dtype === ref.quant.dtype) {
      // A graph that ends on quantized codes (a QuantizeLinear output): the plan hands them out
      // as exact float32 integers, which the session turns into the declared uint8/int8 array.
      ref = codesOut(env, ref, o.name);
    } else if (ref.quant) {
      throw new KilnError(
        ErrorCode.UNSUPPORTED_OP,
        `Expected float32 graph outputs but received '${o.name}', a quantized (${ref.quant.dtype}) value: end the graph with a DequantizeLinear`,
      );
    }
    if (ref.bool) {
      // Plan outputs are float32: a bool value leaves as 0/1, which the session's edge turns
      // into the declared type (bool, or float for a Cast at the output: runtime/edge-types.ts).
      env.bound.set(`${o.name}__bool`, ref);
      ref = lowerCast(new NodeLowering({ name: `${o.name}_as_float`, op: 'Cast', inputs: [`${o.name}__bool`], outputs: [o.name], attrs: { to: 1 } }, env))[0]!;
    }
    if (inputIds.has(ref.id) || outputIds.has(ref.id)) {
      // The plan writes each output into its own caller buffer: copy a shared value.
      ref = copy(env, ref, o.name);
    }
    outputIds.add(ref.id);
    return { name: o.name, ref };
  });
  refuseEmptyValues(env);
  return {
    spec: {
      values: env.values,
      ...(env.uint8Values?.size || env.boolValues?.size ? { valueTypes: env.values.map((_, id) => (env.uint8Values?.has(id) ? 'uint8' : env.boolValues?.has(id) ? 'bool' : 'float32')) } : {}),
      inputs: inputs.map((i) => i.ref.id),
      outputs: outputs.map((o) => o.ref.id),
      steps: env.steps,
      maxThreads: options.maxThreads ?? 0,
      ...(options.allowSpinning === false ? { allowSpinning: false } : {}),
      macsPerImage: env.macs,
    },
    inputs: inputs.map((i) => ({ name: i.name, shape: i.ref.shape })),
    outputs: outputs.map((o) => ({ name: o.name, shape: o.ref.shape })),
    ...(env.fixedBatch !== undefined ? { fixedBatch: env.fixedBatch } : {}),
    macsPerImage: env.macs,
    stepMacs: env.steps.map((_, i) => env.stepMacs?.[i] ?? 0),
    stepInt8: env.steps.map((_, i) => env.int8Steps?.has(i) ?? false),
    flopsPerImage: 2 * (env.macs - (env.int8Macs ?? 0)) + (env.int8Macs ?? 0) / 2,
  };
}

/** Conv nodes whose output only a 2-D MaxPool/AveragePool reads (and nothing else sees). */
function convPoolPairs(graph: Graph, used: Set<string>, sole: SoleReader): Map<GraphNode, GraphNode> {
  const pairs = new Map<GraphNode, GraphNode>();
  for (const node of graph.nodes) {
    const quantized = node.op === 'QLinearConv';
    if ((node.op !== 'Conv' && !quantized) || node.outputs.length !== 1) continue;
    const pool = sole(node.outputs[0]);
    if (!pool || (pool.op !== 'MaxPool' && (quantized || pool.op !== 'AveragePool')) || pool.inputs[0] !== node.outputs[0]) continue;
    if (pool.outputs.slice(1).some((o) => o && used.has(o))) continue;
    pairs.set(node, pool);
  }
  return pairs;
}

/**
 * Reshape -> Transpose [0, 2, 1, 3, 4] -> Reshape chains (ShuffleNet's channel shuffle), each value
 * read once and no graph output, by their first Reshape: lowered as one step on quantized images.
 */
function channelShuffles(graph: Graph, sole: SoleReader): Map<GraphNode, [GraphNode, GraphNode]> {
  const chains = new Map<GraphNode, [GraphNode, GraphNode]>();
  for (const node of graph.nodes) {
    if (node.op !== 'Reshape') continue;
    const t = sole(node.outputs[0]);
    if (t?.op !== 'Transpose' || String(t.attrs.perm) !== '0,2,1,3,4') continue;
    const last = sole(t.outputs[0]);
    if (last?.op === 'Reshape' && last.inputs[0] === t.outputs[0]) chains.set(node, [t, last]);
  }
  return chains;
}

/**
 * Sigmoid nodes whose output only a Mul by the Sigmoid's own input reads (SiLU / Swish, as
 * exporters write it): one Silu step instead of two passes over the activation.
 */
function siluPairs(graph: Graph, sole: SoleReader): Map<GraphNode, GraphNode> {
  const pairs = new Map<GraphNode, GraphNode>();
  for (const node of graph.nodes) {
    if (node.op !== 'Sigmoid') continue;
    const mul = sole(node.outputs[0]);
    if (mul?.op !== 'Mul' || mul.inputs.length !== 2) continue;
    const [a, b] = mul.inputs;
    if ((a === node.inputs[0] && b === node.outputs[0]) || (b === node.inputs[0] && a === node.outputs[0])) pairs.set(node, mul);
  }
  return pairs;
}

/**
 * BatchNormalization nodes whose output only a Relu / Clip / LeakyRelu reads (pre-activation
 * networks: DenseNet's BN -> ReLU -> Conv), with that activation's kiln_activation attributes.
 */
function normActivations(graph: Graph, sole: SoleReader): Map<GraphNode, { act: GraphNode; attrs: Attrs }> {
  const pairs = new Map<GraphNode, { act: GraphNode; attrs: Attrs }>();
  for (const node of graph.nodes) {
    if (node.op !== 'BatchNormalization' || node.outputs.slice(1).some((o) => o)) continue;
    const act = sole(node.outputs[0]);
    const attrs = act && act.inputs[0] === node.outputs[0] ? activationOf(graph, act) : undefined;
    if (act && attrs) pairs.set(node, { act, attrs });
  }
  return pairs;
}

/** Lowers a float BatchNormalization with its activation as one step; false (nothing emitted) otherwise. */
function tryNormActivation(bn: GraphNode, pair: { act: GraphNode; attrs: Attrs }, env: LoweringEnv): boolean {
  const x = env.bound.get(bn.inputs[0]);
  if (!x || x.quant !== undefined || x.bool) return false;
  const steps = env.steps.length;
  try {
    const fused: GraphNode = { ...bn, attrs: { ...bn.attrs, ...pair.attrs }, outputs: [pair.act.outputs[0]] };
    env.bound.set(pair.act.outputs[0], lowerBatchNorm(new NodeLowering(fused, env))[0]!);
    return true;
  } catch (err) {
    if (env.steps.length !== steps) throw err;
    return false;  // lowered node by node instead, where any real problem is reported
  }
}

interface U8BatchNorm {
  bn: GraphNode;
  relu?: GraphNode;
  q: GraphNode;
}

/**
 * DequantizeLinear -> BatchNormalization -> (Relu ->) QuantizeLinear chains, each value read only
 * by the next node (DenseNet's pre-activations between int8 layers), by their DequantizeLinear:
 * lowered as one step on the codes when the value is a uint8 image.
 */
function u8BatchNorms(graph: Graph, sole: SoleReader): Map<GraphNode, U8BatchNorm> {
  const chains = new Map<GraphNode, U8BatchNorm>();
  for (const node of graph.nodes) {
    if (node.op !== 'DequantizeLinear') continue;
    const bn = sole(node.outputs[0]);
    if (bn?.op !== 'BatchNormalization' || bn.inputs[0] !== node.outputs[0] || bn.outputs.slice(1).some((o) => o)) continue;
    let next = sole(bn.outputs[0]);
    const relu = next?.op === 'Relu' ? next : undefined;
    if (relu) next = sole(relu.outputs[0]);
    if (next?.op === 'QuantizeLinear' && next.inputs[0] === (relu ?? bn).outputs[0]) chains.set(node, { bn, ...(relu ? { relu } : {}), q: next });
  }
  return chains;
}

/** Lowers such a chain as one BatchNormU8 step; false (nothing emitted) when it cannot. */
function tryBatchNormU8(dq: GraphNode, chain: U8BatchNorm, env: LoweringEnv): boolean {
  if (env.bound.get(dq.inputs[0])?.quant === undefined) return false;
  const steps = env.steps.length;
  try {
    const q = new NodeLowering(chain.q, env);
    env.bound.set(chain.q.outputs[0], lowerBatchNormU8(new NodeLowering(dq, env), new NodeLowering(chain.bn, env), chain.relu !== undefined, q));
    return true;
  } catch (err) {
    if (env.steps.length !== steps) throw err;
    return false;  // lowered node by node instead, where any real problem is reported
  }
}

/** True when `value` is no graph output and exactly `nodes` read it. */
function onlyReadBy(graph: Graph, readers: ReadonlyMap<string, GraphNode[]>, value: string, nodes: GraphNode[]): boolean {
  const r = readers.get(value) ?? [];
  return !graph.outputs.some((o) => o.name === value) && r.length === nodes.length && r.every((n) => nodes.includes(n));
}

/** Index of the step that writes value `id`, or -1 (a plan input). */
function writerOf(env: LoweringEnv, id: number): number {
  for (let i = env.steps.length - 1; i >= 0; i--) if (env.steps[i]!.outputs.includes(id)) return i;
  return -1;
}

/**
 * Makes `activation` the plan activation of the float step that wrote `x` (the caller checked that
 * nothing else reads `x`), when that step can take it and has none yet: SiLU or HardSwish for a
 * Conv step without a pool, which applies it to each piece of its output while that piece is in
 * cache with the unary kernel a separate step would run; ReLU for an Add step (a residual block's),
 * applied in the Add's own pass, or for a Conv step that took a residual Add (tryResidualConv),
 * applied after the sum. Either way the bits are the separate steps'. False otherwise.
 */
function fuseIntoProducer(x: ValueRef, activation: 'Silu' | 'HardSwish' | 'Relu', env: LoweringEnv): boolean {
  if (x.quant !== undefined || x.bool) return false;
  const producer = env.steps[writerOf(env, x.id)];
  const attrs = producer?.attrs ?? {};
  if (!producer || producer.outputs.length !== 1 || (attrs.activation ?? 'None') !== 'None') return false;
  const conv = producer.op === 'Conv' && attrs.pool === undefined;
  const takes = activation === 'Relu' ? producer.op === 'Add' || (conv && attrs.residual === 1) : conv;
  if (!takes) return false;
  producer.attrs = { ...attrs, activation };
  return true;
}

/**
 * Lowers a float Add of two same-shaped values into the Conv step that wrote one of them (a
 * residual block's shortcut Add), when that step has no activation, pool or residual yet, only
 * the Add reads its output, and the other operand is ready before it runs: the step takes the
 * other operand as its residual input (attr `residual`) and adds it with the activation after it
 * in one pass (per piece of output, in cache, where a SiLU or HardSwish follows): the Add step's
 * work without the step. Only the operand written last can be that Conv (of two, a projection
 * shortcut's, the later one). False (nothing changed) otherwise; the Add is then lowered as a step.
 */
function tryResidualConv(graph: Graph, readers: ReadonlyMap<string, GraphNode[]>, add: GraphNode, env: LoweringEnv): boolean {
  if (add.inputs.length !== 2 || add.inputs[0] === add.inputs[1]) return false;
  const refs = add.inputs.map((name) => env.bound.get(name));
  if (refs.some((r) => !r || r.quant !== undefined || r.bool) || refs[0]!.id === refs[1]!.id) return false;
  if (shapeText(refs[0]!.shape) !== shapeText(refs[1]!.shape)) return false;
  // Only the operand written last can be the Conv: the other must exist when that step runs.
  const writers = refs.map((r) => writerOf(env, r!.id));
  const k = writers[0]! > writers[1]! ? 0 : 1;
  const step = env.steps[writers[k]!];
  const attrs = step?.attrs ?? {};
  if (!step || step.op !== 'Conv' || step.outputs.length !== 1 || step.inputs.length !== 1) return false;
  if ((attrs.activation ?? 'None') !== 'None' || attrs.pool !== undefined || attrs.residual !== undefined) return false;
  if (!onlyReadBy(graph, readers, add.inputs[k]!, [add])) return false;
  step.inputs = [...step.inputs, refs[1 - k]!.id];
  step.attrs = { ...attrs, residual: 1 };
  env.bound.set(add.outputs[0]!, refs[k]!);
  return true;
}

/**
 * Lowers a float SiLU pair as one Silu step; false (nothing emitted) for a quantized input. When
 * its input is the output of a float Conv step which nothing else reads (`inputOnlyHere`), the
 * SiLU becomes that step's activation instead (fuseIntoProducer) and no step is emitted.
 */
function trySilu(sigmoid: GraphNode, mul: GraphNode, env: LoweringEnv, inputOnlyHere: boolean): boolean {
  const x = env.bound.get(sigmoid.inputs[0]);
  if (!x || x.quant !== undefined || x.bool) return false;
  if (inputOnlyHere && fuseIntoProducer(x, 'Silu', env)) {
    env.bound.set(mul.outputs[0], x);
    return true;
  }
  env.bound.set(mul.outputs[0], new NodeLowering(mul, env).emit('Silu', [x], x.shape));
  return true;
}

/** Lowers a channel shuffle on a quantized image as one step; false (nothing emitted) otherwise. */
function tryChannelShuffle(first: GraphNode, transpose: GraphNode, last: GraphNode, env: LoweringEnv): boolean {
  if (env.bound.get(first.inputs[0])?.quant === undefined) return false;
  const steps = env.steps.length;
  try {
    env.bound.set(last.outputs[0], lowerChannelShuffleQ(new NodeLowering(first, env), new NodeLowering(transpose, env), new NodeLowering(last, env)));
    return true;
  } catch (err) {
    if (env.steps.length !== steps) throw err;
    return false;  // lowered node by node instead, where any real problem is reported
  }
}

/** Lowers a Conv and its pool as one step; false (nothing emitted) when they cannot fuse. */
function tryFuse(conv: GraphNode, pool: GraphNode, env: LoweringEnv): boolean {
  const mark = { values: env.values.length, steps: env.steps.length, macs: env.macs, int8Macs: env.int8Macs };
  try {
    const fuse = conv.op === 'QLinearConv' ? lowerQLinearConvPool : lowerConvPool;
    const [ref] = fuse(new NodeLowering(conv, env), new NodeLowering(pool, env));
    env.bound.set(pool.outputs[0], ref);
    return true;
  } catch {
    // Lowered separately instead, where any real problem is reported.
    env.values.length = mark.values;
    env.steps.length = mark.steps;
    env.macs = mark.macs;
    env.int8Macs = mark.int8Macs;
    for (const id of [...(env.uint8Values ?? [])]) if (id >= mark.values) env.uint8Values!.delete(id);
    return false;
  }
}

/**
 * An input with a 0 dimension is an empty set: a Reduce over it gives its identity (0, 1, -inf,
 * ...), and the native plan lets no other step read it. Every other use is refused here, by name.
 */
function refuseEmptyValues(env: LoweringEnv): void {
  const empty = (id: number) => env.values[id]!.some((d) => d === 0);
  for (const step of env.steps) {
    if ((step.inputs.some(empty) && !step.op.startsWith('Reduce')) || step.outputs.some(empty)) {
      throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Expected non-empty tensors for ${step.op} '${step.name}' but received an empty one (Kiln reduces empty sets, nothing else)`);
    }
  }
}

function bindInputs(graph: Graph, env: LoweringEnv, options: CompileOptions): { name: string; ref: ValueRef }[] {
  return graph.inputs
    .filter((v) => !graph.initializers.has(v.name))
    .map((v) => {
      if ((v.dtype === 'uint8' || v.dtype === 'int8') && readsAsCodes(graph, v.name)) return { name: v.name, ref: codesIn(env, v, options) };
      if (v.dtype !== 'float32') {
        throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Expected float32 graph inputs but received '${v.name}' of dtype ${v.dtype}`);
      }
      if (v.shape.length < 1) throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Expected a batch dimension for graph input '${v.name}' but received a scalar`);
      const lead = v.shape[0];
      if (typeof lead === 'number') {
        if (!Number.isInteger(lead) || lead < 1) throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Expected a positive batch for graph input '${v.name}' but received ${lead}`);
        if (env.fixedBatch !== undefined && env.fixedBatch !== lead) {
          throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Expected one batch size for every graph input but received ${env.fixedBatch} and ${lead}`);
        }
        env.fixedBatch = lead;
      }
      const given = options.inputShapes?.[v.name];
      const shape = v.shape.slice(1).map((d, i) => {
        const value = typeof d === 'number' ? d : given?.[i];
        // 0 is an empty set: only a Reduce may read it (checked once the graph is lowered).
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || (typeof d === 'number' && given && given[i] !== d)) {
          throw new KilnError(
            ErrorCode.SHAPE_MISMATCH,
            `Expected a fixed size for dimension ${i + 1} of graph input '${v.name}' ${shapeText(v.shape)} but received ${given ? shapeText(given) : String(d)}`,
          );
        }
        return value;
      });
      const ref = { id: env.values.length, shape };
      env.values.push(shape);
      env.bound.set(v.name, ref);
      return { name: v.name, ref };
    });
}

/** Whether every reader of graph input `name` is an int8 op (which reads quantized codes). */
function readsAsCodes(graph: Graph, name: string): boolean {
  const readers = graph.nodes.filter((n) => n.inputs.includes(name));
  return readers.length > 0 && readers.every((n) => INT8_OPS.has(n.op));
}

/**
 * A uint8/int8 graph input of quantized codes (what a DequantizeLinear or QLinear op reads):
 * the plan takes them as exact float32 integers (the session converts the caller's array) and
 * stores them with scale 1 and zero point 0, which keeps every code; its readers apply their
 * own scale and zero point.
 */
function codesIn(env: LoweringEnv, v: Graph['inputs'][number], options: CompileOptions): ValueRef {
  const raw = bindInputs({ ...emptyGraph, inputs: [{ ...v, name: `${v.name}__codes`, dtype: 'float32' }] }, env, { ...options, inputShapes: options.inputShapes?.[v.name] ? { [`${v.name}__codes`]: options.inputShapes[v.name]! } : {} })[0]!.ref;
  const node: GraphNode = { name: `${v.name}_codes`, op: 'QuantizeLinear', inputs: [`${v.name}__codes`], outputs: [v.name], attrs: { dtype: v.dtype, scale: 1, zero_point: 0 } };
  const [codes] = lowerQuantize(new NodeLowering(node, env));
  env.bound.set(v.name, codes!);
  return raw;
}

/** Quantized codes as exact float32 integers (DequantizeLinear with scale 1, zero point 0). */
function codesOut(env: LoweringEnv, ref: ValueRef, name: string): ValueRef {
  env.bound.set(`${name}__quantized`, ref);
  const node: GraphNode = { name: `${name}_codes`, op: 'DequantizeLinear', inputs: [`${name}__quantized`], outputs: [name], attrs: { scale: 1, zero_point: 0 } };
  return lowerDequantize(new NodeLowering(node, env))[0]!;
}

const emptyGraph: Graph = { name: '', inputs: [], outputs: [], nodes: [], initializers: new Map() };

function copy(env: LoweringEnv, ref: ValueRef, name: string): ValueRef {
  const id = env.values.length;
  env.values.push(ref.shape.slice());
  env.steps.push({ op: 'Copy', name: `${name}_copy`, inputs: [ref.id], outputs: [id] });
  (env.stepMacs ??= [])[env.steps.length - 1] = 0;
  return { id, shape: ref.shape.slice() };
}
