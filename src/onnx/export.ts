/**
 * `exportModel`: a Kiln Graph (or a Module, lowered with `toGraph`) -> ONNX bytes, opset 17,
 * float32, standard operators only, that onnxruntime loads without warnings: Kiln's fused
 * attributes (`kiln_activation`) become separate nodes again, canonical attributes become the
 * opset-17 inputs (Reshape shape, Squeeze/Unsqueeze axes, Pad pads, Clip bounds), unused
 * initializers are left out and every output carries its inferred shape.
 */
import { ErrorCode, KilnError } from '../errors.js';
import { inferInt8GraphShapes, INT8_OPS, isInt8Graph, valueQuantization } from '../graph/int8-ir.js';
import type { AttrValue, Dim, Graph, GraphNode, ValueInfo } from '../graph/ir.js';
import { toGraph } from '../graph/from-module.js';
import { formatShape, inferShapes } from '../graph/shape-inference.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor.js';
import { dims as checkDims, options as checkOptions, typeError } from '../validate.js';
import { AttributeType, DataType, encodeModel, type IAttributeProto, type INodeProto, type ITensorProto, type IValueInfoProto } from './proto.js';
import { tensorToProto } from './tensor-proto.js';
import { onnxTypeOf } from '../runtime/edge-types.js';
import { emitQdqNode, emitQuantizedPool, type QdqEmitter } from './export-qdq.js';

export const EXPORT_OPSET = 17;
/** IR version that goes with opset 17. */
const IR_VERSION = 8;
const FLT_MAX = 3.4028234663852886e38;

export interface ExportOptions {
  /** Input shape [C, H, W] of a Module (required for a Module; the batch stays dynamic, 'N'). */
  inputShape?: readonly number[];
}

/** Operators whose every input is bool (Equal and Where's condition are judged per node). */
const BOOL_OPERAND_OPS: ReadonlySet<string> = new Set(['And', 'Or', 'Xor', 'Not']);

/** Attributes each operator may carry in opset 17, with their ONNX types. */
const ATTRS: Record<string, Record<string, 'int' | 'ints' | 'float' | 'string'>> = {
  Conv: { dilations: 'ints', group: 'int', kernel_shape: 'ints', pads: 'ints', strides: 'ints' },
  ConvTranspose: { dilations: 'ints', group: 'int', kernel_shape: 'ints', pads: 'ints', strides: 'ints', output_padding: 'ints' },
  MaxPool: { ceil_mode: 'int', dilations: 'ints', kernel_shape: 'ints', pads: 'ints', strides: 'ints' },
  AveragePool: { ceil_mode: 'int', count_include_pad: 'int', kernel_shape: 'ints', pads: 'ints', strides: 'ints' },
  GlobalAveragePool: {},
  GlobalMaxPool: {},
  Gemm: { alpha: 'float', beta: 'float', transA: 'int', transB: 'int' },
  MatMul: {},
  LRN: { alpha: 'float', beta: 'float', bias: 'float', size: 'int' },
  BatchNormalization: { epsilon: 'float', momentum: 'float' },
  LayerNormalization: { axis: 'int', epsilon: 'float', stash_type: 'int' },
  InstanceNormalization: { epsilon: 'float' },
  GroupNormalization: { epsilon: 'float', num_groups: 'int' },  // written as opset-17 nodes (emitGroupNorm)
  Relu: {},
  Sigmoid: {},
  Tanh: {},
  HardSwish: {},
  LeakyRelu: { alpha: 'float' },
  HardSigmoid: { alpha: 'float', beta: 'float' },
  Clip: {},
  Add: {},
  Sub: {},
  Mul: {},
  Div: {},
  Sum: {},
  Abs: {},
  Neg: {},
  Sqrt: {},
  Exp: {},
  Log: {},
  Reciprocal: {},
  Floor: {},
  Round: {},
  Ceil: {},
  Erf: {},
  Softplus: {},
  Softsign: {},
  Mish: {},
  Elu: { alpha: 'float' },
  Celu: { alpha: 'float' },
  ThresholdedRelu: { alpha: 'float' },
  Selu: { alpha: 'float', gamma: 'float' },
  Gelu: {},
  PRelu: {},
  Max: {},
  Min: {},
  Pow: {},
  Equal: {},
  Less: {},
  LessOrEqual: {},
  Greater: {},
  GreaterOrEqual: {},
  And: {},
  Or: {},
  Xor: {},
  Not: {},
  IsNaN: {},
  IsInf: { detect_negative: 'int', detect_positive: 'int' },
  Where: {},
  Cast: { to: 'int' },  // FLOAT <-> BOOL on run-time values (import turns other float casts into Identity)
  ReduceMean: { axes: 'ints', keepdims: 'int' },
  ReduceMax: { axes: 'ints', keepdims: 'int' },
  ReduceMin: { axes: 'ints', keepdims: 'int' },
  ReduceSum: { keepdims: 'int' },
  ReduceProd: { axes: 'ints', keepdims: 'int' },
  ReduceL1: { axes: 'ints', keepdims: 'int' },
  ReduceL2: { axes: 'ints', keepdims: 'int' },
  ReduceSumSquare: { axes: 'ints', keepdims: 'int' },
  ReduceLogSumExp: { axes: 'ints', keepdims: 'int' },
  ReduceLogSum: { axes: 'ints', keepdims: 'int' },
  ArgMax: { axis: 'int', keepdims: 'int', select_last_index: 'int' },
  ArgMin: { axis: 'int', keepdims: 'int', select_last_index: 'int' },
  Concat: { axis: 'int' },
  Flatten: { axis: 'int' },
  Reshape: {},
  Squeeze: {},
  Unsqueeze: {},
  Transpose: { perm: 'ints' },
  Softmax: { axis: 'int' },
  LogSoftmax: { axis: 'int' },
  Pad: { mode: 'string' },
  Identity: {},
  Dropout: {},
  Resize: { mode: 'string', coordinate_transformation_mode: 'string', nearest_mode: 'string', cubic_coeff_a: 'float', exclude_outside: 'int', extrapolation_value: 'float' },
  Slice: {},
  Split: { axis: 'int' },
  Gather: { axis: 'int' },
  Expand: {},
  Tile: {},
  DepthToSpace: { blocksize: 'int', mode: 'string' },
  SpaceToDepth: { blocksize: 'int' },
};

/** Canonical attributes that move into inputs (or are checked and dropped) on export. */
const MOVED: Record<string, string[]> = {
  Reshape: ['shape', 'allowzero'],
  Squeeze: ['axes'],
  Unsqueeze: ['axes'],
  Pad: ['pads', 'value'],
  Clip: ['min', 'max'],
  AveragePool: ['dilations'],
  ReduceSum: ['axes'],
  Gelu: ['approximate'],
  Resize: ['scales', 'sizes', 'roi', 'antialias'],
  Slice: ['starts', 'ends', 'axes', 'steps'],
  Split: ['split'],
  Expand: ['shape'],
  Tile: ['repeats'],
};

function unsupported(message: string): KilnError {
  return new KilnError(ErrorCode.UNSUPPORTED_OP, message);
}

function attribute(name: string, type: 'int' | 'ints' | 'float' | 'string', value: AttrValue, where: string): IAttributeProto {
  const bad = (): KilnError => unsupported(`Expected ${type} for attribute ${name} of ${where} but received ${String(value)}`);
  switch (type) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw bad();
      return { name, type: AttributeType.INT, i: value };
    case 'float':
      if (typeof value !== 'number') throw bad();
      return { name, type: AttributeType.FLOAT, f: value };
    case 'string':
      if (typeof value !== 'string') throw bad();
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
    case 'ints':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isInteger(v))) throw bad();
      return { name, type: AttributeType.INTS, ints: value as number[] };
  }
}

function valueInfo(name: string, dtype: ValueInfo['dtype'], shape: readonly Dim[] | undefined): IValueInfoProto {
  const elemType = onnxTypeOf(dtype);
  const tensorType: NonNullable<IValueInfoProto['type']>['tensorType'] = { elemType };
  if (shape !== undefined) tensorType.shape = { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  return { name, type: { tensorType } };
}

/** Builds the node and initializer lists of the exported graph. */
class Emitter {
  readonly nodes: INodeProto[] = [];
  readonly initializers: ITensorProto[] = [];
  private readonly taken: Set<string>;

  /** The source graph's constants (GroupNormalization reads its scale and bias). */
  readonly weights: Map<string, Tensor>;

  /** Declared dtypes of the graph outputs (ArgMax / ArgMin write int64 straight to an int64 output). */
  readonly outputDtypes: Map<string, ValueInfo['dtype']>;

  /** ArgMax / ArgMin results written as int64 (graph outputs): an Identity reading one is a Cast to FLOAT. */
  readonly int64Indices = new Set<string>();

  constructor(graph: Graph) {
    this.weights = graph.initializers;
    this.outputDtypes = new Map(graph.outputs.map((o) => [o.name, o.dtype]));
    this.taken = new Set([...graph.initializers.keys(), ...graph.inputs.map((i) => i.name), ...graph.nodes.flatMap((n) => [n.name, ...n.outputs])]);
  }

  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    return name;
  }

  constant(base: string, tensor: Tensor, int32As: 'INT64' | 'INT32' = 'INT64'): string {
    const name = this.fresh(base);
    this.initializers.push(tensorToProto(name, tensor, int32As));
    return name;
  }

  node(name: string, op: string, inputs: string[], outputs: string[], attribute: IAttributeProto[] = []): void {
    this.nodes.push({ name, opType: op, input: inputs, output: outputs, attribute });
  }
}

/** Attributes of the runtime's fused activation (see src/runtime/lowering/window.ts). */
const ACTIVATION_ATTRS = ['kiln_activation', 'kiln_activation_alpha', 'kiln_activation_min', 'kiln_activation_max'];

/** Whether a node carries a fused activation to emit as its own node. */
function fusedActivation(node: GraphNode): string | undefined {
  const act = node.attrs.kiln_activation;
  return act === undefined || act === 'None' ? undefined : String(act);
}

/** The activation a `kiln_activation` attribute stands for, emitted after the node. */
function emitActivation(e: Emitter, node: GraphNode, act: string, input: string, output: string): void {
  const name = e.fresh(`${node.name}_${act.toLowerCase()}`);
  const where = `${node.op} '${node.name}'`;
  const num = (key: string): number | undefined => {
    const v = node.attrs[key];
    if (v !== undefined && typeof v !== 'number') throw unsupported(`Expected a number for attribute ${key} of ${where} but received ${String(v)}`);
    return v;
  };
  const clip = (lo: number | undefined, hi: number | undefined): void => {
    const inputs = [input, lo === undefined ? '' : e.constant(`${name}_min`, new Tensor('float32', [lo], []))];
    if (hi !== undefined) inputs.push(e.constant(`${name}_max`, new Tensor('float32', [hi], [])));
    while (inputs[inputs.length - 1] === '') inputs.pop();
    e.node(name, 'Clip', inputs, [output]);
  };
  switch (act) {
    case 'Relu':
    case 'Sigmoid':
    case 'Tanh':
    case 'HardSwish':
      e.node(name, act, [input], [output]);
      return;
    case 'LeakyRelu':
      e.node(name, act, [input], [output], [attribute('alpha', 'float', num('kiln_activation_alpha') ?? 0.01, where)]);
      return;
    case 'Relu6':
      clip(0, 6);
      return;
    case 'Clip':
      clip(num('kiln_activation_min'), num('kiln_activation_max'));
      return;
    default:
      throw unsupported(`Kiln cannot export kiln_activation '${act}' of ${where}`);
  }
}

/**
 * Gelu in opset-17 operators: 0.5 x (1 + erf(x / sqrt 2)), or its tanh approximation written as
 * x sigmoid(2u) (= 0.5 x (1 + tanh(u)) without the cancellation of 1 + tanh for negative u).
 */
function emitGelu(e: Emitter, node: GraphNode, x: string, y: string): void {
  const approximate = node.attrs.approximate ?? 'none';
  if (approximate !== 'none' && approximate !== 'tanh') throw unsupported(`Kiln cannot export Gelu '${node.name}' with approximate '${String(approximate)}'`);
  const scalar = (base: string, v: number): string => e.constant(`${node.name}_${base}`, new Tensor('float32', [v], []));
  let step = 0;
  const op = (type: string, ins: string[], out?: string): string => {
    const o = out ?? e.fresh(`${node.name}_${type.toLowerCase()}${step}`);
    e.node(e.fresh(`${node.name}_${type.toLowerCase()}${step++}`), type, ins, [o]);
    return o;
  };
  let inner: string;
  if (approximate === 'none') {
    inner = op('Erf', [op('Mul', [x, scalar('inv_sqrt2', Math.SQRT1_2)])]);
  } else {
    const x3 = op('Mul', [op('Mul', [x, x]), x]);
    const twoU = op('Mul', [op('Add', [x, op('Mul', [x3, scalar('c', 0.044715)])]), scalar('two_sqrt_2_over_pi', 2 * Math.sqrt(2 / Math.PI))]);
    op('Mul', [x, op('Sigmoid', [twoU])], y);
    return;
  }
  const onePlus = op('Add', [inner, scalar('one', 1)]);
  op('Mul', [op('Mul', [x, scalar('half', 0.5)]), onePlus], y);
}

function emitNode(e: Emitter, node: GraphNode, shapes: Map<string, Dim[]>): void {
  const where = `${node.op} '${node.name}'`;
  if (node.op === 'GroupNormalization') {
    emitGroupNorm(e, node, shapes, where);
    return;
  }
  const allowed = ATTRS[node.op]!;
  const attrs: IAttributeProto[] = [];
  for (const [key, value] of Object.entries(node.attrs)) {
    if (key.startsWith('kiln_')) {
      if (ACTIVATION_ATTRS.includes(key)) continue;
      throw unsupported(`Kiln cannot express attribute ${key} of ${where} in ONNX`);
    }
    if (MOVED[node.op]?.includes(key)) continue;
    const type = allowed[key];
    if (type === undefined) throw unsupported(`Kiln cannot export attribute ${key} of ${where} (not an opset-${EXPORT_OPSET} attribute)`);
    attrs.push(attribute(key, type, value, where));
  }
  const inputs = node.inputs.slice();
  const ints = (key: string): number[] | undefined => {
    const v = node.attrs[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isInteger(x))) throw unsupported(`Expected integers for attribute ${key} of ${where} but received ${String(v)}`);
    return v as number[];
  };
  const num = (key: string): number | undefined => {
    const v = node.attrs[key];
    if (v !== undefined && typeof v !== 'number') throw unsupported(`Expected a number for attribute ${key} of ${where} but received ${String(v)}`);
    return v;
  };
  switch (node.op) {
    case 'Reshape': {
      const shape = ints('shape');
      if (shape !== undefined) inputs.splice(1, inputs.length, e.constant(`${node.name}_shape`, new Tensor('int32', shape)));
      break;
    }
    case 'Squeeze':
    case 'Unsqueeze': {
      const axes = ints('axes');
      if (axes !== undefined) inputs.splice(1, inputs.length, e.constant(`${node.name}_axes`, new Tensor('int32', axes)));
      break;
    }
    case 'Pad': {
      if (node.attrs.mode === 'wrap') throw unsupported(`Kiln cannot export ${where} at opset ${EXPORT_OPSET}: mode 'wrap' needs opset 19`);
      const pads = ints('pads');
      if (pads !== undefined) {
        inputs.splice(1, inputs.length, e.constant(`${node.name}_pads`, new Tensor('int32', pads)));
        const value = num('value') ?? 0;
        if (value !== 0) inputs.push(e.constant(`${node.name}_value`, new Tensor('float32', [value], [])));
      }
      break;
    }
    case 'Clip': {
      const min = num('min');
      const max = num('max');
      if (min !== undefined || max !== undefined) {
        inputs.splice(1, inputs.length);
        const bounded = (v: number | undefined): boolean => v !== undefined && Math.abs(v) < FLT_MAX;
        if (bounded(min) || bounded(max)) inputs.push(bounded(min) ? e.constant(`${node.name}_min`, new Tensor('float32', [min!], [])) : '');
        if (bounded(max)) inputs.push(e.constant(`${node.name}_max`, new Tensor('float32', [max!], [])));
      }
      break;
    }
    case 'AveragePool': {
      const d = ints('dilations');
      if (d !== undefined && d.some((x) => x !== 1)) throw unsupported(`Kiln cannot export dilated ${where} at opset ${EXPORT_OPSET}`);
      break;
    }
    case 'Dropout':
      inputs.splice(1);
      break;
    case 'ReduceSum': {
      // An input from opset 13.
      const axes = ints('axes');
      if (axes !== undefined) inputs.splice(1, inputs.length, e.constant(`${node.name}_axes`, new Tensor('int32', axes)));
      break;
    }
    case 'ArgMax':
    case 'ArgMin': {
      // Kiln's indices are float values that only a Cast to FLOAT (an Identity after import) or an
      // int64 output reads: the int64 ONNX indices go through a Cast unless they end the graph as int64.
      const out = node.outputs[0]!;
      if (e.outputDtypes.get(out) === 'int64') {
        e.int64Indices.add(out);
        break;
      }
      const indices = e.fresh(`${out}_indices`);
      e.node(node.name, node.op, inputs, [indices], attrs);
      e.node(e.fresh(`${node.name}_to_float`), 'Cast', [indices], [out], [attribute('to', 'int', 1, where)]);
      return;
    }
    case 'Identity':
      if (!e.int64Indices.has(inputs[0]!)) break;
      e.node(node.name, 'Cast', inputs, node.outputs.slice(0, 1), [attribute('to', 'int', 1, where)]);
      return;
    case 'Gelu':
      // Gelu is an opset-20 operator: written out in opset-17 operators.
      emitGelu(e, node, inputs[0]!, node.outputs[0]!);
      return;
    case 'Mish': {
      // An opset-18 operator: x tanh(softplus(x)).
      const soft = e.fresh(`${node.name}_softplus`);
      const tanh = e.fresh(`${node.name}_tanh`);
      e.node(e.fresh(`${node.name}_softplus`), 'Softplus', [inputs[0]!], [soft]);
      e.node(e.fresh(`${node.name}_tanh`), 'Tanh', [soft], [tanh]);
      e.node(node.name, 'Mul', [inputs[0]!, tanh], node.outputs.slice(0, 1));
      return;
    }
    case 'Resize': {
      // Sizes when the model gave them for a static input; the float32 scales otherwise (a
      // dynamic batch cannot be written in a constant sizes input), when they give the same sizes.
      const sizes = ints('sizes');
      const scales = node.attrs.scales as number[] | undefined;
      const x = shapes.get(node.inputs[0] ?? '');
      // (An input renamed on export, a DequantizeLinear's output, has no inferred shape: unchecked.)
      const agree = sizes === undefined || scales === undefined || x === undefined || sizes.every((v, i) => typeof x[i] !== 'number' || Math.fround(v / (x[i] as number)) === Math.fround(scales[i]!));
      if (!agree) throw unsupported(`Kiln cannot export ${where} at opset ${EXPORT_OPSET}: its output sizes do not follow from its scales (keep_aspect_ratio_policy)`);
      const staticInput = x === undefined || x.every((d) => typeof d === 'number');
      // The opset-13 Resize has no antialias attribute (opset 18 added it).
      if (num('antialias') === 1) throw unsupported(`Kiln cannot export ${where} at opset ${EXPORT_OPSET}: antialias needs opset 18`);
      const roiValues = node.attrs.roi as number[] | undefined;
      const roi = roiValues === undefined ? '' : e.constant(`${node.name}_roi`, new Tensor('float32', roiValues));
      if (sizes !== undefined && staticInput && sizes.every((v) => v >= 0)) {
        inputs.splice(1, inputs.length, roi, '', e.constant(`${node.name}_sizes`, new Tensor('int32', sizes)));
      } else if (scales !== undefined) {
        const exact = sizes === undefined || x === undefined || sizes.every((v, i) => typeof x[i] !== 'number' || Math.floor(Math.fround(Math.fround(scales[i]!) * (x[i] as number))) === v);
        if (!exact) throw unsupported(`Kiln cannot export ${where} at opset ${EXPORT_OPSET}: sizes [${sizes!.join(', ')}] on an input with a dynamic dimension, which scales do not reproduce`);
        inputs.splice(1, inputs.length, roi, e.constant(`${node.name}_scales`, new Tensor('float32', scales)));
      }
      break;
    }
    case 'Slice': {
      const starts = ints('starts');
      if (starts !== undefined) {
        inputs.splice(1, inputs.length, e.constant(`${node.name}_starts`, new Tensor('int32', starts)), e.constant(`${node.name}_ends`, new Tensor('int32', ints('ends') ?? [])));
        const axes = ints('axes');
        const steps = ints('steps');
        if (axes !== undefined || steps !== undefined) inputs.push(e.constant(`${node.name}_axes`, new Tensor('int32', axes ?? starts.map((_, i) => i))));
        if (steps !== undefined) inputs.push(e.constant(`${node.name}_steps`, new Tensor('int32', steps)));
      }
      break;
    }
    case 'Split':
    case 'Expand':
    case 'Tile': {
      const key = node.op === 'Split' ? 'split' : node.op === 'Expand' ? 'shape' : 'repeats';
      const v = ints(key);
      if (v !== undefined) inputs.splice(1, inputs.length, e.constant(`${node.name}_${key}`, new Tensor('int32', v)));
      break;
    }
  }
  const outputs = node.outputs.slice(0, node.op === 'Dropout' || node.op === 'BatchNormalization' || node.op === 'MaxPool' ? 1 : undefined);
  const act = fusedActivation(node);
  if (act !== undefined) {
    const pre = e.fresh(`${outputs[0]}_preact`);
    e.node(node.name, node.op, inputs, [pre, ...outputs.slice(1)], attrs);
    emitActivation(e, node, act, pre, outputs[0]!);
  } else {
    e.node(node.name, node.op, inputs, outputs, attrs);
  }
  void shapes;
}

/**
 * GroupNormalization (opset 18+) at opset 17, the way the PyTorch exporter writes it: the input
 * reshaped to [N, G, -1], InstanceNormalization with unit scale, reshaped back, then the
 * per-channel scale and bias (per-group opset-18 ones expanded) as Mul and Add.
 */
function emitGroupNorm(e: Emitter, node: GraphNode, shapes: Map<string, Dim[]>, where: string): void {
  const [x, scaleName, biasName] = node.inputs;
  const groups = node.attrs.num_groups;
  const epsilon = node.attrs.epsilon ?? 1e-5;
  const xShape = shapes.get(x!);
  if (typeof groups !== 'number' || typeof epsilon !== 'number') throw unsupported(`Expected num_groups and epsilon numbers on ${where}`);
  if (xShape === undefined || typeof xShape[1] !== 'number') throw unsupported(`Kiln cannot export ${where} without a known channel count`);
  const c = xShape[1];
  const perChannel = (name: string | undefined, what: string): string => {
    const t = name === undefined ? undefined : e.weights.get(name);
    if (t === undefined || t.type !== 'float32') throw unsupported(`Kiln cannot export ${where} whose ${what} is not a float32 constant`);
    const data = t.data as Float32Array;
    const full = data.length === c ? data : Float32Array.from({ length: c }, (_, ch) => data[Math.floor(ch / (c / groups))]!);
    return e.constant(`${node.name}_${what}`, new Tensor('float32', full, [c, ...new Array<number>(xShape.length - 2).fill(1)]));
  };
  const grouped = e.fresh(`${node.name}_grouped`);
  e.node(e.fresh(`${node.name}_group`), 'Reshape', [x!, e.constant(`${node.name}_group_shape`, new Tensor('int32', [0, groups, -1]))], [grouped]);
  const normed = e.fresh(`${node.name}_normed`);
  e.node(e.fresh(`${node.name}_instance`), 'InstanceNormalization', [
    grouped, e.constant(`${node.name}_ones`, new Tensor('float32', new Float32Array(groups).fill(1))), e.constant(`${node.name}_zeros`, new Tensor('float32', new Float32Array(groups))),
  ], [normed], [attribute('epsilon', 'float', epsilon, where)]);
  const shape = e.fresh(`${node.name}_shape`);
  e.node(e.fresh(`${node.name}_shape_of`), 'Shape', [x!], [shape]);
  const back = e.fresh(`${node.name}_ungrouped`);
  e.node(e.fresh(`${node.name}_ungroup`), 'Reshape', [normed, shape], [back]);
  const scaled = e.fresh(`${node.name}_scaled`);
  e.node(e.fresh(`${node.name}_scale`), 'Mul', [back, perChannel(scaleName, 'scale')], [scaled]);
  e.node(node.name, 'Add', [scaled, perChannel(biasName, 'bias')], [node.outputs[0]!]);
}

/**
 * A graph with int8 ops (docs/int8-ir.md) as ONNX QDQ (export-qdq.ts); its float nodes as usual.
 * Quantized values keep their dtype in the exported graph (uint8 or int8 tensors between ops).
 */
function emitInt8Graph(e: Emitter, graph: Graph, shapes: Map<string, Dim[]>): void {
  const { quant } = valueQuantization(graph);
  const qe: QdqEmitter = {
    fresh: (base) => e.fresh(base),
    // int32 tensors of an int8 graph are biases and their zero points: ONNX INT32.
    constant: (base, t) => e.constant(base, t, 'INT32'),
    node: (name, op, inputs, outputs, attrs) => e.node(name, op, inputs, outputs, attrs),
    shapeConstant: (base, values) => e.constant(base, new Tensor('int32', values), 'INT64'),
    float: (node) => emitNode(e, node, shapes),
  };
  for (const node of graph.nodes) {
    const q = quant.get(node.inputs[0] ?? '');
    if (INT8_OPS.has(node.op)) emitQdqNode(qe, node, { quant, shapes }, graph.initializers);
    else if (q !== undefined && ['MaxPool', 'Resize', 'Slice', 'Split'].includes(node.op)) emitQuantizedPool(qe, node, q);
    else emitNode(e, node, shapes);
  }
}

function isGraph(v: unknown): v is Graph {
  const g = v as Graph;
  return typeof v === 'object' && v !== null && Array.isArray(g.nodes) && Array.isArray(g.inputs) && Array.isArray(g.outputs) && g.initializers instanceof Map;
}

/**
 * Writes a Module or Graph as an ONNX model (opset 17).
 *
 * @param source a Module (give `inputShape` [C, H, W]) or a Graph
 * @returns the serialized ModelProto
 * @throws KilnError ERR_KILN_UNSUPPORTED_OP for operators or attributes ONNX cannot express
 */
export function exportModel(source: Module | Graph, options?: ExportOptions): Uint8Array {
  const opts = checkOptions<ExportOptions>('options', options);
  let graph: Graph;
  if (source instanceof Module) {
    if (opts.inputShape === undefined) throw typeError('options.inputShape', 'an input shape [C, H, W] for a Module', undefined);
    graph = toGraph(source, checkDims('options.inputShape', opts.inputShape));
  } else if (isGraph(source)) {
    graph = source;
  } else {
    throw typeError('source', 'a Module or a Graph', source);
  }

  const bad = graph.nodes.filter((n) => ATTRS[n.op] === undefined && !INT8_OPS.has(n.op));
  if (bad.length > 0) {
    throw unsupported(`Kiln cannot export ${bad.length} node(s) as standard ONNX: ${bad.map((n) => `${n.op} '${n.name}'`).join('; ')}`);
  }
  const int8 = isInt8Graph(graph);
  const shapes = int8 ? inferInt8GraphShapes(graph) : inferShapes(graph);
  const e = new Emitter(graph);
  if (int8) {
    emitInt8Graph(e, graph, shapes);
  } else {
    for (const node of graph.nodes) emitNode(e, node, shapes);
  }

  const used = new Set(e.nodes.flatMap((n) => n.input ?? []));
  // The int32 biases of int8 ops stay INT32 (DequantizeLinear's input type); other int32 data is shape-like.
  const int32Biases = new Set(graph.nodes.filter((n) => INT8_OPS.has(n.op) && n.op !== 'DynamicQGemm').map((n) => n.inputs[3] ?? ''));
  for (const o of graph.outputs) used.add(o.name);
  // Kiln holds bool constants as uint8 0/1 (one byte each, as ONNX stores BOOL): those a node
  // reads as bool go back out as BOOL.
  const boolConstants = new Set(graph.nodes.flatMap((n) => (n.op === 'Where' ? [n.inputs[0] ?? ''] : BOOL_OPERAND_OPS.has(n.op) ? n.inputs : [])));
  const initializers = [...graph.initializers]
    .filter(([name]) => used.has(name))
    .map(([name, t]) => tensorToProto(name, t, int32Biases.has(name) ? 'INT32' : 'INT64'))
    .map((p) => (p.dataType === DataType.UINT8 && boolConstants.has(p.name ?? '') ? { ...p, dataType: DataType.BOOL } : p))
    .concat(e.initializers);

  const outputs = graph.outputs.map((o) => {
    const inferred = shapes.get(o.name);
    if (inferred !== undefined && o.shape.length > 0 && inferred.length !== o.shape.length) {
      throw new KilnError(ErrorCode.SHAPE_MISMATCH, `Expected output '${o.name}' to have shape ${formatShape(o.shape)} but the graph computes ${formatShape(inferred)}`);
    }
    return valueInfo(o.name, o.dtype, inferred ?? (o.shape.length > 0 ? o.shape : undefined));
  });

  const metadataProps = Object.entries(graph.metadata ?? {}).map(([key, value]) => ({ key, value: String(value) }));
  return encodeModel({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: EXPORT_OPSET }],
    producerName: 'kiln',
    producerVersion: '0.1.0',
    graph: {
      name: graph.name,
      node: e.nodes,
      initializer: initializers,
      input: graph.inputs.map((i) => valueInfo(i.name, i.dtype, i.shape)),
      output: outputs,
    },
    metadataProps,
  });
}
