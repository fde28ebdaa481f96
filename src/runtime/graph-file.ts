/**
 * A Graph (e.g. an int8 graph from `quantize`) in a `.kiln` file: the model JSON holds the nodes,
 * value infos, metadata and initializer names; the tensors are the initializers as they are (int8
 * weights, int32 biases, float32 scales) plus any tensor-valued attribute. Loading checks the graph's
 * structure and every int8 node's parameters (docs/int8-ir.md): a file that passes its checksums but
 * holds, say, a float weight where an int8 one belongs, a non-positive scale or a bias of the wrong
 * length is `ERR_KILN_CORRUPT_MODEL`.
 */
import { ErrorCode, KilnError } from '../errors.js';
import type { AttrValue, Attrs, Graph, GraphNode, ValueInfo } from '../graph/ir.js';
import { validateGraph } from '../graph/validate-graph.js';
import { INT8_OPS, QuantAttrs, quantWeights, valueQuantization, type QDType } from '../graph/int8-ir.js';
import { lookupOf } from '../graph/int8-lookup.js';
import { Tensor } from '../tensor.js';
import type { KilnFile } from './kiln-file.js';

/** The `model` value of a `.kiln` file holding a Graph. */
export interface SavedGraphJson {
  kind: 'graph';
  name: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Nodes; a tensor-valued attribute is `{ tensor: name }` naming a file tensor. */
  nodes: { name: string; op: string; inputs: string[]; outputs: string[]; attrs: Record<string, unknown> }[];
  /** Names of the file's tensors that are initializers (in graph order). */
  initializers: string[];
  metadata?: Record<string, string>;
  /** One image's shape (the graph input without the batch), when fixed. */
  inputShape?: number[];
}

/** The model JSON and tensors to write for `graph`. */
export function graphToKiln(graph: Graph): { model: SavedGraphJson; tensors: Map<string, Tensor> } {
  validateGraph(graph);
  const tensors = new Map<string, Tensor>(graph.initializers);
  const nodes = graph.nodes.map((n) => {
    const attrs: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(n.attrs)) {
      if (value instanceof Tensor) {
        let name = `${n.name}/${key}`;
        for (let i = 1; tensors.has(name); i++) name = `${n.name}/${key}_${i}`;
        tensors.set(name, value);
        attrs[key] = { tensor: name };
      } else {
        attrs[key] = value;
      }
    }
    return { name: n.name, op: n.op, inputs: [...n.inputs], outputs: [...n.outputs], attrs };
  });
  const model: SavedGraphJson = {
    kind: 'graph',
    name: graph.name,
    inputs: graph.inputs.map((v) => ({ ...v, shape: [...v.shape] })),
    outputs: graph.outputs.map((v) => ({ ...v, shape: [...v.shape] })),
    nodes,
    initializers: [...graph.initializers.keys()],
    ...(graph.metadata ? { metadata: { ...graph.metadata } } : {}),
  };
  const shape = graph.inputs[0]?.shape.slice(1);
  if (shape && shape.every((d) => typeof d === 'number')) model.inputShape = shape as number[];
  return { model, tensors };
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function checkValueInfos(v: unknown, what: string, fail: (w: string) => never): ValueInfo[] {
  if (!Array.isArray(v)) fail(`${what} is not an array`);
  return (v as unknown[]).map((info, i) => {
    const o = info as Partial<ValueInfo> | null;
    if (o === null || typeof o !== 'object' || typeof o.name !== 'string' || typeof o.dtype !== 'string' || !Array.isArray(o.shape)) {
      fail(`${what}[${i}] is not a value info {name, dtype, shape}`);
    }
    if (!o!.shape!.every((d) => typeof d === 'string' || (Number.isInteger(d) && (d as number) >= 0))) fail(`${what}[${i}] has an invalid shape`);
    return { name: o!.name!, dtype: o!.dtype!, shape: [...o!.shape!] };
  });
}

function checkAttr(value: unknown, tensors: ReadonlyMap<string, Tensor>, used: Set<string>, where: string, fail: (w: string) => never): AttrValue {
  if (typeof value === 'number' || typeof value === 'string') return value;
  if (Array.isArray(value) && (value.every((x) => typeof x === 'number') || value.every((x) => typeof x === 'string'))) return value as AttrValue;
  if (value !== null && typeof value === 'object' && typeof (value as { tensor?: unknown }).tensor === 'string') {
    const name = (value as { tensor: string }).tensor;
    const t = tensors.get(name);
    if (!t) fail(`${where} names the missing tensor '${name}'`);
    used.add(name);
    return t!;
  }
  return fail(`${where} is not a number, string, array or tensor reference`);
}

/** Checks the parameters of every int8 node; throws ERR_KILN_CORRUPT_MODEL naming the node. */
function checkInt8Nodes(graph: Graph): void {
  const { dtypes, quant } = valueQuantization(graph, ErrorCode.CORRUPT_MODEL);
  for (const node of graph.nodes) {
    if (!INT8_OPS.has(node.op)) continue;
    const a = new QuantAttrs(node, ErrorCode.CORRUPT_MODEL);
    const inputType = (i: number): QDType => {
      const t = dtypes.get(node.inputs[i] ?? '');
      if (t !== 'uint8' && t !== 'int8') throw a.fail(`input ${i}`, 'a uint8 or int8 value', t ?? 'nothing');
      return t;
    };
    switch (node.op) {
      case 'DequantizeLinear':
        a.scale('scale');
        a.zeroPoint('zero_point', inputType(0));
        break;
      case 'QLinearConv':
        a.scale('x_scale');
        a.zeroPoint('x_zero_point', inputType(0));
        quantWeights(a, graph.initializers);
        break;
      case 'QLinearGemm':
        a.scale('a_scale');
        a.zeroPoint('a_zero_point', inputType(0));
        quantWeights(a, graph.initializers);
        break;
      case 'QLinearAdd':
      case 'QLinearMul':
        a.scale('a_scale');
        a.zeroPoint('a_zero_point', inputType(0));
        a.scale('b_scale');
        a.zeroPoint('b_zero_point', inputType(1));
        break;
      case 'QLinearGlobalAveragePool':
      case 'QLinearAveragePool':
        a.scale('x_scale');
        a.zeroPoint('x_zero_point', inputType(0));
        break;
      case 'DynamicQGemm':
        quantWeights(a, graph.initializers);
        break;
      case 'QLinearLookup':
        inputType(0);
        lookupOf(a, quant.get(node.inputs[0]!)!);
        break;
      case 'QLinearConcat': {
        // One scale and zero point per input, in the input's own range.
        const scales = node.attrs.x_scales;
        const zps = node.attrs.x_zero_points;
        const n = node.inputs.length;
        if (!Array.isArray(scales) || scales.length !== n || scales.some((v) => typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))) {
          throw a.fail('x_scales', `${n} finite scales > 0`, JSON.stringify(scales));
        }
        if (!Array.isArray(zps) || zps.length !== n) throw a.fail('x_zero_points', `${n} zero points`, JSON.stringify(zps));
        zps.forEach((z, i) => {
          const [lo, hi] = inputType(i) === 'int8' ? [-128, 127] : [0, 255];
          if (typeof z !== 'number' || !Number.isInteger(z) || z < lo || z > hi) throw a.fail(`x_zero_points[${i}]`, `an integer in [${lo}, ${hi}]`, String(z));
        });
        break;
      }
      default:
        break;
    }
  }
}

/**
 * Builds the Graph held by a decoded `.kiln` file written by `save(graph)`.
 * @throws KilnError ERR_KILN_CORRUPT_MODEL naming the first problem
 */
export function graphFromKilnFile(file: KilnFile, source?: string): Graph {
  const fail = (what: string, cause?: unknown): never => {
    throw new KilnError(ErrorCode.CORRUPT_MODEL, `Invalid graph in .kiln file${source === undefined ? '' : ` ${source}`}: ${what}`, cause === undefined ? undefined : { cause });
  };
  const m = file.model as Partial<SavedGraphJson> | null;
  if (m === null || typeof m !== 'object' || m.kind !== 'graph') fail('model.kind is not \'graph\'');
  if (typeof m!.name !== 'string') fail('model.name is not a string');
  const inputs = checkValueInfos(m!.inputs, 'model.inputs', fail);
  const outputs = checkValueInfos(m!.outputs, 'model.outputs', fail);
  if (!isStringArray(m!.initializers)) fail('model.initializers is not an array of names');
  if (!Array.isArray(m!.nodes)) fail('model.nodes is not an array');
  const used = new Set<string>();
  const initializers = new Map<string, Tensor>();
  for (const name of m!.initializers!) {
    const t = file.tensors.get(name);
    if (!t) fail(`it has no tensor '${name}', which the graph needs`);
    initializers.set(name, t!);
    used.add(name);
  }
  const nodes: GraphNode[] = m!.nodes!.map((n, i) => {
    if (n === null || typeof n !== 'object' || typeof n.name !== 'string' || typeof n.op !== 'string' || !isStringArray(n.inputs) || !isStringArray(n.outputs)) {
      fail(`model.nodes[${i}] is not a node {name, op, inputs, outputs, attrs}`);
    }
    if (n.attrs === null || typeof n.attrs !== 'object' || Array.isArray(n.attrs)) fail(`model.nodes[${i}].attrs is not an object`);
    const attrs: Attrs = {};
    for (const [key, value] of Object.entries(n.attrs)) attrs[key] = checkAttr(value, file.tensors, used, `attribute ${key} of node '${n.name}'`, fail);
    return { name: n.name, op: n.op, inputs: [...n.inputs], outputs: [...n.outputs], attrs };
  });
  for (const name of file.tensors.keys()) if (!used.has(name)) fail(`it holds tensor '${name}', which the graph does not use`);
  let metadata: Record<string, string> | undefined;
  if (m!.metadata !== undefined) {
    if (m!.metadata === null || typeof m!.metadata !== 'object' || !Object.values(m!.metadata).every((v) => typeof v === 'string')) fail('model.metadata is not an object of strings');
    metadata = { ...m!.metadata };
  }
  const graph: Graph = { name: m!.name!, inputs, outputs, nodes, initializers, ...(metadata ? { metadata } : {}) };
  try {
    validateGraph(graph);
    checkInt8Nodes(graph);
  } catch (err) {
    if (err instanceof KilnError && err.code === ErrorCode.CORRUPT_MODEL) {
      throw new KilnError(ErrorCode.CORRUPT_MODEL, `Invalid graph in .kiln file${source === undefined ? '' : ` ${source}`}: ${err.message}`, { cause: err });
    }
    fail((err as Error).message, err);
  }
  return graph;
}
