/**
 * Graphs whose inputs share no batch dimension (a scalar input, 1-D inputs, a second input with
 * another leading size, Gemm's A and B both fed) run on the batch-major native plan as one image
 * of batch 1: `withUnitBatch` rewrites the graph, for concrete input shapes, so that every value
 * carries a leading axis of size 1. The plan's per-image shapes are then the full ONNX shapes.
 *
 * Only axis-like attributes need care (they count the new axis): Softmax/Concat `axis`,
 * Squeeze/Unsqueeze `axes`, Transpose `perm`, Pad `pads`, Reshape `shape`. Flatten becomes a
 * Reshape (its 2-D result would fold the unit axis away) and Gemm a MatMul with its scalings
 * (the plan's Gemm takes the batch as A's rows). Ops whose lowering needs the real batch
 * leading (convolutions, pools, normalisations, the int8 ops) are refused for such graphs; ops
 * this file does not list pass with `axis` / `axes` shifted unless they name dimensions otherwise.
 */
import { ErrorCode, KilnError } from '../errors.js';
import type { Graph, GraphNode, ValueInfo } from '../graph/ir.js';
import { formatShape, inferShapes, type Shape } from '../graph/shape-inference.js';
import { Tensor } from '../tensor.js';

/** Ops that run unchanged on values with a leading unit axis. */
const AXIS_FREE = new Set([
  'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Identity', 'Dropout',
  'Add', 'Sub', 'Mul', 'Div', 'Sum', 'MatMul',
  'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf', 'Where',
  // Per-tensor Q/DQ (the int8 IR's boundary ops) act element by element.
  'QuantizeLinear', 'DequantizeLinear',
]);

/** Broadcasting ops whose computed operands are reshaped to one rank first (see alignRanks). */
const RANK_ALIGNED = new Set(['Add', 'Sub', 'Mul', 'Div', 'Sum', 'MatMul', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Where']);

/** Ops whose lowering reads the leading dimension as the batch of images (NCHW). */
const BATCH_LEADING = new Set([
  'Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LRN', 'BatchNormalization',
  'QLinearConv', 'QLinearGemm', 'QLinearAdd', 'DynamicQGemm',
]);

/**
 * Ops whose output shape takes an input's whole shape or values (indices, target shapes, an
 * equation), which a leading unit axis on every value would change.
 */
const SHAPE_FROM_INPUTS = new Set([
  'Gather', 'GatherND', 'ScatterND', 'OneHot', 'Expand', 'Tile', 'Resize', 'Upsample', 'Range', 'NonZero', 'Einsum', 'Compress',
  'DepthToSpace', 'SpaceToDepth',
]);

/**
 * Attributes that list or measure dimensions in ways a shift of `axis` / `axes` does not cover:
 * an op this file does not know that carries one is refused rather than guessed at.
 */
const DIMENSION_ATTRS = new Set(['perm', 'pads', 'shape', 'starts', 'ends', 'steps', 'repeats', 'sizes', 'scales', 'split', 'kernel_shape', 'strides', 'dilations', 'blocksize']);

/**
 * Other ops (those other modules lower: element-wise, reductions, ...) keep their meaning when
 * their `axis` / `axes` count the unit axis too, as long as nothing else about them names
 * dimensions: no dimension-listing attribute, no integer constant input (a shape, indices), and
 * no reduction over every axis without kept dims (it would drop the unit axis).
 */
function shiftedUnknown(node: GraphNode, initializers: Map<string, Tensor>): Record<string, number | number[]> {
  const fused = Object.keys(node.attrs).find((k) => k.startsWith('kiln_'));
  if (fused !== undefined) throw refuse(node, `it carries ${fused}, a fusion this rewrite does not undo`);
  const listed = Object.keys(node.attrs).find((k) => DIMENSION_ATTRS.has(k));
  if (listed !== undefined) throw refuse(node, `its attribute ${listed} names dimensions`);
  const intInput = node.inputs.find((v) => v !== '' && initializers.has(v) && initializers.get(v)!.type !== 'float32');
  if (intInput !== undefined) throw refuse(node, `its integer constant input '${intInput}' may name dimensions`);
  if (node.attrs.keepdims === 0 && node.attrs.axes === undefined && node.attrs.axis === undefined) throw refuse(node, 'it reduces every axis without keeping them');
  const shifted: Record<string, number | number[]> = {};
  if (typeof node.attrs.axis === 'number') shifted.axis = node.attrs.axis < 0 ? node.attrs.axis : node.attrs.axis + 1;
  if (Array.isArray(node.attrs.axes)) shifted.axes = (node.attrs.axes as number[]).map((a) => (a < 0 ? a : a + 1));
  return shifted;
}

/**
 * Whether the graph's inputs lack a shared batch dimension: some input is a scalar, or the
 * leading dimensions differ (another symbol, another number, a number against a symbol).
 */
export function needsUnitBatch(graph: Graph): boolean {
  const inputs = graph.inputs.filter((v) => !graph.initializers.has(v.name));
  if (inputs.some((v) => v.shape.length === 0)) return true;
  return new Set(inputs.map((v) => String(v.shape[0]))).size > 1;
}

/** Thrown for a node the unit-batch form cannot express; the caller reports it. */
function refuse(node: GraphNode, why: string): KilnError {
  return new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot run ${node.op} '${node.name}' in a graph whose inputs share no batch dimension: ${why}`);
}

/**
 * The graph rewritten for one run of the given concrete input shapes (full shapes, in the order
 * of the graph's inputs): every value gains a leading axis of size 1.
 */
export function withUnitBatch(graph: Graph, inputShapes: readonly (readonly number[])[]): Graph {
  const inputs = graph.inputs.filter((v) => !graph.initializers.has(v.name));
  const concrete: Graph = { ...graph, inputs: inputs.map((v, i) => ({ ...v, shape: inputShapes[i]!.slice() })) };
  const shapes = inferShapes(concrete);
  const initializers = new Map(graph.initializers);
  const taken = new Set<string>([...shapes.keys(), ...graph.nodes.flatMap((n) => [n.name, ...n.outputs])]);
  const fresh = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };
  const staticShape = (node: GraphNode, value: string): number[] => {
    const s = shapes.get(value);
    if (s === undefined || s.some((d) => typeof d !== 'number')) throw refuse(node, `the shape of '${value}' is not known for these inputs`);
    return s as number[];
  };

  const nodes: GraphNode[] = [];
  /**
   * The plan broadcasts values of one rank only (the batch stays leading): a computed operand of
   * lower rank than another computed operand is reshaped to that rank first (leading 1s, which
   * numpy broadcasting assumes anyway). MatMul's 1-D operands keep their rank (they are vectors).
   */
  const alignRanks = (node: GraphNode): GraphNode => {
    const computed = node.inputs.filter((v) => v !== '' && !initializers.has(v));
    if (computed.length < 2 || !RANK_ALIGNED.has(node.op)) return node;
    const rank = Math.max(...computed.map((v) => staticShape(node, v).length));
    const inputs = node.inputs.map((v) => {
      if (v === '' || initializers.has(v)) return v;
      const shape = staticShape(node, v);
      if (shape.length === rank || (node.op === 'MatMul' && shape.length < 2)) return v;
      const padded = fresh(`${v}_rank${rank}`);
      nodes.push({ name: fresh(`${node.name}_align_${v}`), op: 'Reshape', inputs: [v], outputs: [padded], attrs: { shape: [1, ...new Array<number>(rank - shape.length).fill(1), ...shape] } });
      return padded;
    });
    return { ...node, inputs };
  };
  /**
   * MatMul with a computed vector operand: the plan would take the unit axis for a matrix
   * dimension, so the vector becomes a matrix of the other operand's rank ([.., 1, K] for A,
   * [.., K, 1] for B) and the product is reshaped back to the ONNX result. A computed vector A
   * times a constant B needs none of this (the plan's row-times-weights form).
   */
  const matMulOfVectors = (node: GraphNode): void => {
    const [a, b] = node.inputs as [string, string];
    const computed = (v: string): boolean => !initializers.has(v);
    if (!computed(b) && staticShape(node, a).length === 1) {
      nodes.push(node);
      return;
    }
    const rank = Math.max(2, ...[a, b].map((v) => staticShape(node, v).length));
    const asMatrix = (v: string, which: 'A' | 'B'): string => {
      const shape = staticShape(node, v);
      if (shape.length !== 1 || !computed(v)) return v;
      const k = shape[0]!;
      const matrix = fresh(`${v}_as_${which}`);
      const ones = new Array<number>(rank - 2).fill(1);
      const matrixShape = [...ones, ...(which === 'A' ? [1, k] : [k, 1])];
      shapes.set(matrix, matrixShape);
      nodes.push({ name: fresh(`${node.name}_${which}_matrix`), op: 'Reshape', inputs: [v], outputs: [matrix], attrs: { shape: [1, ...matrixShape] } });
      return matrix;
    };
    const product = fresh(`${node.name}_product`);
    nodes.push(alignRanks({ ...node, inputs: [asMatrix(a, 'A'), asMatrix(b, 'B')], outputs: [product] }));
    nodes.push({ name: fresh(`${node.name}_result`), op: 'Reshape', inputs: [product], outputs: [node.outputs[0]!], attrs: { shape: [1, ...staticShape(node, node.outputs[0]!)] } });
  };
  for (const node of graph.nodes) {
    const shift = (axes: number[]): number[] => axes.map((a) => a + 1);
    const attrs = { ...node.attrs };
    if (node.op === 'MatMul' && node.inputs.some((v) => !initializers.has(v) && staticShape(node, v).length === 1)) {
      matMulOfVectors(node);
      continue;
    }
    if (AXIS_FREE.has(node.op)) {
      nodes.push(alignRanks(node));
      continue;
    }
    switch (node.op) {
      case 'Softmax':
      case 'LogSoftmax':
      case 'Concat':
        attrs.axis = (node.attrs.axis as number) + 1;
        break;
      case 'Squeeze':
      case 'Unsqueeze':
        attrs.axes = shift(node.attrs.axes as number[]);
        break;
      case 'Transpose':
        attrs.perm = [0, ...shift(node.attrs.perm as number[])];
        break;
      case 'Pad': {
        const pads = node.attrs.pads as number[];
        const r = pads.length / 2;
        attrs.pads = [0, ...pads.slice(0, r), 0, ...pads.slice(r)];
        break;
      }
      case 'Reshape':
        attrs.shape = [1, ...(node.attrs.shape as number[])];
        break;
      // Parameters bound at import (parameter inputs) leave these with attributes (and Gather
      // with constant indices) only: each counts the unit axis like the others.
      case 'Slice': {
        const starts = node.attrs.starts as number[];
        const axes = (node.attrs.axes as number[] | undefined) ?? starts.map((_, i) => i);
        attrs.axes = axes.map((a) => (a < 0 ? a : a + 1));
        break;
      }
      case 'Split':
      case 'Gather': {
        if (node.op === 'Gather' && !initializers.has(node.inputs[1] ?? '')) throw refuse(node, 'its output shape is built from an input\'s whole shape or values');
        const a = (node.attrs.axis as number | undefined) ?? 0;
        attrs.axis = a < 0 ? a : a + 1;
        break;
      }
      case 'Tile':
        attrs.repeats = [1, ...(node.attrs.repeats as number[])];
        break;
      case 'Expand': {
        const target = node.attrs.shape as number[];
        const x = node.inputs[0]!;
        const shape = staticShape(node, x);
        attrs.shape = [1, ...target];
        if (target.length > shape.length) {
          // The plan keeps a value's rank: the input takes the target's rank first (leading 1s).
          const padded = fresh(`${x}_rank${target.length}`);
          nodes.push({ name: fresh(`${node.name}_rank`), op: 'Reshape', inputs: [x], outputs: [padded], attrs: { shape: [1, ...new Array<number>(target.length - shape.length).fill(1), ...shape] } });
          nodes.push({ ...node, inputs: [padded, ...node.inputs.slice(1)], attrs });
          continue;
        }
        break;
      }
      case 'Flatten': {
        const out = staticShape(node, node.outputs[0]!);
        nodes.push({ ...node, op: 'Reshape', attrs: { shape: [1, ...out] } });
        continue;
      }
      case 'Gemm': {
        // A fed C of rank < 2 ([N], [1], a scalar) broadcasts against the [M, N] product: give it
        // the product's rank first, as the plan broadcasts values of one rank only.
        const c = node.inputs[2] ?? '';
        let gemm = node;
        if (c !== '' && !initializers.has(c) && staticShape(node, c).length < 2) {
          const padded = fresh(`${c}_2d`);
          const shape = staticShape(node, c);
          nodes.push({ name: fresh(`${node.name}_c_2d`), op: 'Reshape', inputs: [c], outputs: [padded], attrs: { shape: [1, ...new Array<number>(2 - shape.length).fill(1), ...shape] } });
          gemm = { ...node, inputs: [node.inputs[0]!, node.inputs[1]!, padded] };
        }
        // An activation the passes fused into the Gemm (kiln_activation) follows as its own node.
        const activation = unfusedActivation(node, fresh);
        if (activation !== undefined) gemm = { ...gemm, outputs: [activation.inputs[0]!] };
        nodes.push(...gemmAsMatMul(gemm, initializers, fresh));
        if (activation !== undefined) nodes.push(activation);
        continue;
      }
      default:
        if (BATCH_LEADING.has(node.op)) throw refuse(node, 'its lowering needs the leading dimension of its input to be the batch');
        if (SHAPE_FROM_INPUTS.has(node.op)) throw refuse(node, 'its output shape is built from an input\'s whole shape or values');
        if (new Set(node.inputs.filter((v) => v !== '' && !initializers.has(v)).map((v) => staticShape(node, v).length)).size > 1) {
          throw refuse(node, 'its computed inputs differ in rank');
        }
        Object.assign(attrs, shiftedUnknown(node, initializers));
    }
    nodes.push({ ...node, attrs });
  }
  const unit = (v: ValueInfo, shape: Shape): ValueInfo => ({ ...v, shape: [1, ...shape] });
  return {
    ...graph,
    inputs: concrete.inputs.map((v) => unit(v, v.shape)),
    outputs: graph.outputs.map((o) => unit(o, shapes.get(o.name) ?? o.shape)),
    nodes,
    initializers,
  };
}

/**
 * Gemm = alpha * A' B' + beta * C as MatMul, Mul and Add on unit-batch values (A' and B' the
 * transposed operands where transA / transB ask). Constant operands are transposed and scaled here.
 */
function gemmAsMatMul(node: GraphNode, initializers: Map<string, Tensor>, fresh: (base: string) => string): GraphNode[] {
  const out: GraphNode[] = [];
  const alpha = (node.attrs.alpha as number | undefined) ?? 1;
  const beta = (node.attrs.beta as number | undefined) ?? 1;
  const operand = (i: 0 | 1): string => {
    const name = node.inputs[i]!;
    const transposed = ((node.attrs[i === 0 ? 'transA' : 'transB'] as number | undefined) ?? 0) !== 0;
    if (!transposed) return name;
    const constant = initializers.get(name);
    if (constant !== undefined) {
      const t = transpose2d(constant);
      const tName = fresh(`${name}_T`);
      initializers.set(tName, t);
      return tName;
    }
    const tOut = fresh(`${node.name}_${i === 0 ? 'A' : 'B'}_T`);
    out.push({ name: fresh(`${node.name}_transpose_${i}`), op: 'Transpose', inputs: [name], outputs: [tOut], attrs: { perm: [0, 2, 1] } });
    return tOut;
  };
  const a = operand(0);
  const b = operand(1);
  const c = node.inputs[2] ?? '';
  const result = node.outputs[0]!;
  const last = (op: string): boolean => {
    if (op === 'MatMul') return alpha === 1 && (c === '' || beta === 0);
    if (op === 'Mul') return c === '' || beta === 0;
    return true;
  };
  let product = last('MatMul') ? result : fresh(`${node.name}_AB`);
  out.push({ name: fresh(`${node.name}_matmul`), op: 'MatMul', inputs: [a, b], outputs: [product], attrs: {} });
  if (alpha !== 1) {
    const scaled = last('Mul') ? result : fresh(`${node.name}_alphaAB`);
    const alphaName = fresh(`${node.name}_alpha`);
    initializers.set(alphaName, new Tensor('float32', Float32Array.of(alpha), []));
    out.push({ name: fresh(`${node.name}_scale`), op: 'Mul', inputs: [product, alphaName], outputs: [scaled], attrs: {} });
    product = scaled;
  }
  if (c === '' || beta === 0) return out;
  let bias = c;
  const constantC = initializers.get(c);
  if (beta !== 1 && constantC !== undefined) {
    bias = fresh(`${c}_beta`);
    initializers.set(bias, new Tensor('float32', (constantC.data as Float32Array).map((v) => v * beta), constantC.dims.slice()));
  } else if (beta !== 1) {
    bias = fresh(`${node.name}_betaC`);
    const betaName = fresh(`${node.name}_beta`);
    initializers.set(betaName, new Tensor('float32', Float32Array.of(beta), []));
    out.push({ name: fresh(`${node.name}_scale_c`), op: 'Mul', inputs: [c, betaName], outputs: [bias], attrs: {} });
  }
  out.push({ name: fresh(`${node.name}_bias`), op: 'Add', inputs: [product, bias], outputs: [result], attrs: {} });
  return out;
}

/** The activation node a `kiln_activation` attribute stands for (src/graph/passes/fuse-activation.ts), reading a fresh value. */
function unfusedActivation(node: GraphNode, fresh: (base: string) => string): GraphNode | undefined {
  const kind = node.attrs.kiln_activation;
  if (kind === undefined) return undefined;
  const F32_MAX = 3.4028234663852886e38;
  const base = { name: fresh(`${node.name}_activation`), inputs: [fresh(`${node.name}_preactivation`)], outputs: [node.outputs[0]!] };
  switch (kind) {
    case 'Relu':
      return { ...base, op: 'Relu', attrs: {} };
    case 'Relu6':
      return { ...base, op: 'Clip', attrs: { min: 0, max: 6 } };
    case 'LeakyRelu':
      return { ...base, op: 'LeakyRelu', attrs: { alpha: (node.attrs.kiln_activation_alpha as number | undefined) ?? 0.01 } };
    case 'Clip':
      return { ...base, op: 'Clip', attrs: { min: (node.attrs.kiln_activation_min as number | undefined) ?? -F32_MAX, max: (node.attrs.kiln_activation_max as number | undefined) ?? F32_MAX } };
    default:
      throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot run ${node.op} '${node.name}' with kiln_activation '${String(kind)}' in a graph whose inputs share no batch dimension`);
  }
}

function transpose2d(t: Tensor): Tensor {
  if (t.dims.length !== 2 || t.type !== 'float32') throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Expected a 2-D float32 Gemm operand but received ${t.type} ${formatShape(t.dims)}`);
  const [rows, cols] = t.dims as [number, number];
  const src = t.data as Float32Array;
  const data = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[c * rows + r] = src[r * cols + c]!;
  return new Tensor('float32', data, [cols, rows]);
}
