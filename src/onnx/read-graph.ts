/**
 * ModelProto -> a raw graph: the ONNX nodes as they are (attributes decoded, opset-specific forms
 * kept), initializers as Tensors, declared shapes, in topological order, after structural checks
 * (every value produced once, every input produced by something, no cycle).
 */
import type { AttrValue, Attrs, Dim, GraphNode, ValueInfo } from '../graph/ir.js';
import type { Tensor } from '../tensor.js';
import { ErrorCode, KilnError } from '../errors.js';
import {
  AttributeType, corrupt, DataType, dataTypeName, int64ToNumber,
  type IAttributeProto, type IModelProto, type ITensorProto, type IValueInfoProto,
} from './proto.js';
import { MAX_DIM, tensorFromProto } from './tensor-proto.js';
import { NEWEST_ONNX_OPSET, OLDEST_ONNX_OPSET } from './op-versions.js';
import { ONNX_TYPE_DTYPES, unheldTypeReason } from '../runtime/edge-types.js';

/** An ONNX node before normalisation; `domain` '' is the default ONNX domain. */
export interface RawNode extends GraphNode {
  domain: string;
  /** Attributes Kiln cannot represent (subgraphs, sparse tensors), by name. */
  skippedAttrs: string[];
}

export interface RawGraph {
  name: string;
  /** Default-domain opset; NEWEST_ONNX_OPSET when the model imports none (it has no such node). */
  opset: number;
  /** Opset of every imported domain ('' is the default domain), to name a node's version. */
  domainOpsets: Map<string, number>;
  inputs: ValueInfo[];
  /** Declared outputs; shape undefined when the model does not declare one. */
  outputs: { name: string; dtype: ValueInfo['dtype'] | undefined; shape: Dim[] | undefined }[];
  /** Declared shapes of intermediate values (value_info). */
  declared: Map<string, Dim[]>;
  /**
   * ONNX element type of every value that declares one (inputs, outputs, value_info) and of every
   * initializer (as stored: the Tensor may hold it in a wider or narrower type), for CastLike.
   */
  elemTypes: Map<string, number>;
  initializers: Map<string, Tensor>;
  nodes: RawNode[];
  metadata: Record<string, string>;
}

/** Graph inputs and outputs of every type a Tensor holds are read; the session converts them (runtime/edge-types.ts). */
const DTYPES: Partial<Record<number, ValueInfo['dtype']>> = ONNX_TYPE_DTYPES;

const has = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key);
const utf8 = new TextDecoder('utf-8');

/** The opsets a model imports: the default domain's, and every domain's by name. */
export interface ModelOpsets {
  opset: number;
  domainOpsets: Map<string, number>;
}

/**
 * Opsets of a model; checks the IR version and the default-domain opset range. A model that
 * imports other domains only (ai.onnx.ml, say) is a valid model: its nodes are judged (and
 * reported unsupported) one by one.
 */
export function modelOpsets(model: IModelProto): ModelOpsets {
  const ir = int64ToNumber(model.irVersion, 'ir_version');
  if (ir < 3 || ir > 64) throw corrupt(`Expected an ONNX IR version in [3, 64] but received ${ir}`);
  if (!model.graph) throw corrupt('Expected a graph in the ONNX model but received none');
  const domainOpsets = new Map<string, number>();
  for (const o of model.opsetImport ?? []) {
    const domain = o.domain === 'ai.onnx' || o.domain === undefined || o.domain === null ? '' : o.domain;
    domainOpsets.set(domain, int64ToNumber(o.version, 'opset_import version'));
  }
  if (domainOpsets.size === 0) throw corrupt('Expected an opset_import but received none');
  const opset = domainOpsets.get('');
  if (opset === undefined) {
    const plain = (model.graph.node ?? []).find((n) => !n.domain || n.domain === 'ai.onnx');
    if (plain !== undefined) throw corrupt(`Expected an opset_import for the default ONNX domain, which ${plain.opType ?? 'node'} '${plain.name ?? ''}' uses, but received none`);
    return { opset: NEWEST_ONNX_OPSET, domainOpsets };
  }
  if (opset < OLDEST_ONNX_OPSET || opset > NEWEST_ONNX_OPSET) {
    throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Expected an ONNX opset (domain ai.onnx) in [${OLDEST_ONNX_OPSET}, ${NEWEST_ONNX_OPSET}] but received ${opset}`);
  }
  return { opset, domainOpsets };
}

/** The declared tensor type and shape of a ValueInfoProto. */
export function declaredType(v: IValueInfoProto, what: string): { elemType: number; shape: Dim[] | undefined } | undefined {
  const tt = v.type?.tensorType;
  if (!tt) return undefined;
  const elemType = tt.elemType ?? 0;
  if (!tt.shape) return { elemType, shape: undefined };
  const shape: Dim[] = (tt.shape.dim ?? []).map((d, i) => {
    if (has(d, 'dimValue')) {
      const n = int64ToNumber(d.dimValue, `${what} dim ${i}`);
      if (n > MAX_DIM) throw corrupt(`Expected a dimension in [0, ${MAX_DIM}] for ${what} dim ${i} but received ${n}`);
      if (n > 0) return n;
    }
    if (has(d, 'dimParam') && d.dimParam) return d.dimParam.replace(/\*/g, '_');
    return `${v.name ?? 'value'}_d${i}`;
  });
  return { elemType, shape };
}

function attrValue(a: IAttributeProto, what: string, external: Map<ITensorProto, Uint8Array>): AttrValue | undefined {
  let type = a.type ?? AttributeType.UNDEFINED;
  if (type === AttributeType.UNDEFINED) {
    // Very old models leave the type out: take the field that is set.
    if (a.t) type = AttributeType.TENSOR;
    else if (a.ints && a.ints.length) type = AttributeType.INTS;
    else if (a.floats && a.floats.length) type = AttributeType.FLOATS;
    else if (a.strings && a.strings.length) type = AttributeType.STRINGS;
    else if (a.s && a.s.length) type = AttributeType.STRING;
    else if (has(a, 'i')) type = AttributeType.INT;
    else if (has(a, 'f')) type = AttributeType.FLOAT;
  }
  switch (type) {
    case AttributeType.FLOAT:
      return a.f ?? 0;
    case AttributeType.INT:
      return int64ToNumber(a.i, what);
    case AttributeType.STRING:
      return utf8.decode(a.s ?? new Uint8Array(0));
    case AttributeType.TENSOR:
      if (!a.t) throw corrupt(`Expected a tensor for ${what} but received none`);
      return tensorFromProto(a.t, what, external.get(a.t));
    case AttributeType.FLOATS:
      return (a.floats ?? []).slice();
    case AttributeType.INTS:
      return (a.ints ?? []).map((v, i) => int64ToNumber(v, `${what}[${i}]`));
    case AttributeType.STRINGS:
      return (a.strings ?? []).map((s) => utf8.decode(s));
    default:
      return undefined;
  }
}

/** Every TensorProto of the main graph that stores its bytes externally. */
export function externalTensors(model: IModelProto): { tensor: ITensorProto; what: string }[] {
  const out: { tensor: ITensorProto; what: string }[] = [];
  const graph = model.graph!;
  for (const t of graph.initializer ?? []) if (t.dataLocation === 1) out.push({ tensor: t, what: `initializer '${t.name ?? ''}'` });
  for (const n of graph.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (a.t && a.t.dataLocation === 1) out.push({ tensor: a.t, what: `attribute ${a.name ?? ''} of node '${n.name ?? ''}'` });
    }
  }
  return out;
}

/** Builds the raw graph; `external` maps externally stored tensors to their bytes. */
export function readGraph(model: IModelProto, { opset, domainOpsets }: ModelOpsets, external: Map<ITensorProto, Uint8Array>): RawGraph {
  const g = model.graph!;
  const initializers = new Map<string, Tensor>();
  const elemTypes = new Map<string, number>();
  for (const [i, t] of (g.initializer ?? []).entries()) {
    if (t.name) elemTypes.set(t.name, t.dataType ?? 0);
    const name = t.name ?? '';
    const what = `initializer '${name}'`;
    if (name === '') throw corrupt(`Expected a name for initializer ${i} but received none`);
    if (initializers.has(name)) throw corrupt(`Expected unique initializer names but '${name}' appears twice`);
    initializers.set(name, tensorFromProto(t, what, external.get(t)));
  }
  if ((g.sparseInitializer ?? []).length > 0) throw new KilnError(ErrorCode.UNSUPPORTED_OP, 'Kiln cannot import sparse initializers');

  const inputs: ValueInfo[] = [];
  const seenInputs = new Set<string>();
  for (const v of g.input ?? []) {
    const name = v.name ?? '';
    // Old exporters list every initializer as a graph input too: those are weights, not inputs.
    if (initializers.has(name)) continue;
    if (name === '' || seenInputs.has(name)) throw corrupt(`Expected unique, non-empty graph input names but received '${name}'`);
    seenInputs.add(name);
    const t = declaredType(v, `graph input '${name}'`);
    if (t === undefined) throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln imports tensor inputs only; graph input '${name}' is not a tensor`);
    const dtype = DTYPES[t.elemType];
    if (dtype === undefined) {
      const typeName = dataTypeName(t.elemType);
      if (typeName === undefined) throw corrupt(`Expected a tensor element type for graph input '${name}' but received ${t.elemType}`);
      throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot feed ${typeName} graph inputs ('${name}'): ${unheldTypeReason(t.elemType)}`);
    }
    elemTypes.set(name, t.elemType);
    if (t.shape === undefined) throw corrupt(`Expected a shape for graph input '${name}' but received none (pass inputShapes)`);
    inputs.push({ name, dtype, shape: t.shape });
  }

  const outputs: RawGraph['outputs'] = [];
  for (const v of g.output ?? []) {
    const name = v.name ?? '';
    if (name === '') throw corrupt('Expected a name for every graph output but received an empty one');
    const t = declaredType(v, `graph output '${name}'`);
    if (t && t.elemType !== 0) {
      elemTypes.set(name, t.elemType);
      if (DTYPES[t.elemType] === undefined && dataTypeName(t.elemType) !== undefined) {
        throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot return ${dataTypeName(t.elemType)} graph outputs ('${name}'): ${unheldTypeReason(t.elemType)}`);
      }
    }
    outputs.push({ name, dtype: t ? DTYPES[t.elemType] : undefined, shape: t?.shape });
  }
  if (outputs.length === 0) throw corrupt('Expected at least one graph output but received none');

  const declared = new Map<string, Dim[]>();
  for (const v of g.valueInfo ?? []) {
    const t = declaredType(v, `value '${v.name ?? ''}'`);
    if (t?.shape !== undefined && v.name) declared.set(v.name, t.shape);
    if (t && t.elemType !== 0 && v.name && !elemTypes.has(v.name)) elemTypes.set(v.name, t.elemType);
  }

  const nodes = sortNodes(readNodes(model, external), inputs, initializers, outputs.map((o) => o.name));
  // The model's own metadata_props, plus where the graph came from (kept through export).
  const metadata: Record<string, string> = {};
  for (const p of model.metadataProps ?? []) if (p.key) metadata[p.key] = p.value ?? '';
  metadata.source_format = 'onnx';
  if (domainOpsets.has('')) metadata.source_opset = String(opset);
  if (model.producerName) metadata.source_producer = `${model.producerName}${model.producerVersion ? ` ${model.producerVersion}` : ''}`;
  return { name: g.name || 'onnx', opset, domainOpsets, inputs, outputs, declared, elemTypes, initializers, nodes, metadata };
}

function readNodes(model: IModelProto, external: Map<ITensorProto, Uint8Array>): RawNode[] {
  const names = new Set<string>();
  const nodes = model.graph!.node ?? [];
  return nodes.map((n, index) => {
    const op = n.opType ?? '';
    if (op === '') throw corrupt(`Expected an op_type for node ${index} but received none`);
    let name = n.name || `${op}_${index}`;
    for (let k = 1; names.has(name); k++) name = `${n.name || op}_${index}_${k}`;
    names.add(name);
    const attrs: Attrs = {};
    const skippedAttrs: string[] = [];
    for (const a of n.attribute ?? []) {
      const key = a.name ?? '';
      const v = attrValue(a, `attribute ${key} of ${op} '${name}'`, external);
      if (v === undefined) skippedAttrs.push(key);
      else attrs[key] = v;
    }
    return {
      name, op, domain: n.domain === 'ai.onnx' ? '' : (n.domain ?? ''), inputs: (n.input ?? []).slice(),
      outputs: (n.output ?? []).slice(), attrs, skippedAttrs,
    };
  });
}

/**
 * Topological order (stable: the file's order where it is already valid), after checking that
 * each value is produced once and that every read value exists.
 */
function sortNodes(nodes: RawNode[], inputs: ValueInfo[], initializers: Map<string, Tensor>, outputs: string[]): RawNode[] {
  const producer = new Map<string, number>();
  const sources = new Set<string>([...inputs.map((i) => i.name), ...initializers.keys()]);
  nodes.forEach((n, i) => {
    for (const o of n.outputs) {
      if (o === '') continue;
      if (producer.has(o) || sources.has(o)) throw corrupt(`Expected each value to be produced once but '${o}' is produced again by ${n.op} '${n.name}'`);
      producer.set(o, i);
    }
  });
  for (const n of nodes) {
    for (const i of n.inputs) {
      if (i !== '' && !producer.has(i) && !sources.has(i)) throw corrupt(`Expected a producer for value '${i}' read by ${n.op} '${n.name}' but nothing produces it`);
    }
  }
  for (const o of outputs) {
    if (!producer.has(o) && !sources.has(o)) throw corrupt(`Expected a producer for graph output '${o}' but nothing produces it`);
  }
  const pending = nodes.map((n) => new Set(n.inputs.filter((i) => i !== '' && producer.has(i))).size);
  const readers = new Map<string, number[]>();
  nodes.forEach((n, i) => {
    for (const v of new Set(n.inputs)) {
      if (v === '' || !producer.has(v)) continue;
      const list = readers.get(v);
      if (list) list.push(i);
      else readers.set(v, [i]);
    }
  });
  const order: RawNode[] = [];
  // Ready nodes come out smallest file index first, so an already sorted file keeps its order.
  const ready = new MinHeap();
  pending.forEach((p, i) => { if (p === 0) ready.push(i); });
  while (ready.size > 0) {
    const i = ready.pop();
    order.push(nodes[i]!);
    for (const o of nodes[i]!.outputs) {
      for (const r of readers.get(o) ?? []) if (--pending[r]! === 0) ready.push(r);
    }
  }
  if (order.length !== nodes.length) {
    const placed = new Set(order);
    const stuck = nodes.filter((n) => !placed.has(n)).slice(0, 5).map((n) => `'${n.name}'`);
    throw corrupt(`Expected an acyclic graph but nodes ${stuck.join(', ')} form a cycle`);
  }
  return order;
}

/** A binary min-heap of integers. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(v: number): void {
    const a = this.items;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p]! <= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  pop(): number {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
