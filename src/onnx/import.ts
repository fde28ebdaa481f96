/**
 * `importModel`: an .onnx file (or its bytes) -> a canonical Kiln Graph, ready for
 * `InferenceSession.create`.
 *
 * One forward pass over the nodes in topological order normalises each node (opset forms ->
 * canonical attributes, see normalize.ts), folds it when its inputs are known at import
 * (constant-folding.ts; shape chains over a dynamic batch fold symbolically) and otherwise infers
 * its output shapes (shape-inference.ts). Nodes nothing reads are then dropped, and any operator
 * the runtime cannot run is reported, all of them in one ERR_KILN_UNSUPPORTED_OP error.
 */
import { dirname } from 'node:path';

import { ErrorCode, KilnError } from '../errors.js';
import { FOLDABLE_OPS, foldNode, isSymbolic, MAX_FOLD_TOTAL, type KnownValue } from '../graph/constant-folding.js';
import { INT8_OPS } from '../graph/int8-ir.js';
import type { Dim, Graph, GraphNode, ValueInfo } from '../graph/ir.js';
import { formatShape, inferNodeShapes, type Shape } from '../graph/shape-inference.js';
import { Tensor } from '../tensor.js';
import { emptyModel, readModelFile } from '../util/files.js';
import { options as checkOptions, typeError } from '../validate.js';
import { type BatchIndex, type BatchIndexContext, batchIndexStep } from './batch-index.js';
import { readExternalData } from './external-data.js';
import { normalizeNode, Unsupported, type NormalizeContext } from './normalize.js';
import { corrupt, decodeModel, type ITensorProto } from './proto.js';
import { externalTensors, modelOpsets, readGraph, type RawGraph, type RawNode } from './read-graph.js';
import { notImplementedReason, RUNTIME_OPS } from './supported-ops.js';
import { resolveOpVersion, unimplementedAttribute, unimplementedVersion } from './op-versions.js';
import { addQuantNode, isQuantOnnxNode, liftQuantized, type QuantImportEnv } from './import-quant.js';
import { MAX_DIM } from './tensor-proto.js';
import { bindModelInputs, type BindableTensor } from './bind-inputs.js';

/** TensorProto element types of the run-time values. */
const ONNX_FLOAT = 1;
const ONNX_BOOL = 9;
/** Operators whose result is bool, and views that keep their input's element type. */
const BOOL_RESULT_OPS: ReadonlySet<string> = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);
const BOOL_VIEW_OPS: ReadonlySet<string> = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']);
import { unheldTypeReason } from '../runtime/edge-types.js';

export interface ImportOptions {
  /**
   * Folder holding the external data files of the model (ONNX external data). Default: the
   * folder of the model file; required when the model is given as bytes and has external data.
   */
  externalDataDir?: string;
  /**
   * Replacement shapes for graph inputs, by name (e.g. to fix a dynamic height and width).
   * Numbers are static sizes, strings symbolic ones.
   */
  inputShapes?: Record<string, readonly Dim[]>;
  /**
   * Values for graph inputs, by name: each becomes an initializer before anything is folded, so
   * the model imports exactly as if it stored them as constants (used for parameter inputs, see
   * parameter-inputs.ts). Values are copied and held like ONNX constants: integers as int32 (a
   * value outside int32 is a RangeError), floats as float32. A value's dtype must be the one the
   * input declares or the storage type Kiln reads that as (int32, float32, int8, uint8); its dims
   * must match the declared ones.
   */
  bindInputs?: Record<string, BindableTensor>;
}

/**
 * Reads an ONNX model into Kiln's graph IR.
 *
 * @param source path of an .onnx file, or its bytes
 * @throws KilnError ERR_KILN_CORRUPT_MODEL for a file that is not a consistent ONNX model;
 *   ERR_KILN_UNSUPPORTED_OP listing every operator (type and node name) Kiln cannot run
 */
export async function importModel(source: string | Uint8Array, options?: ImportOptions): Promise<Graph> {
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) throw typeError('source', 'a path or a Uint8Array', source);
  const opts = checkOptions<ImportOptions>('options', options);
  if (opts.externalDataDir !== undefined && typeof opts.externalDataDir !== 'string') throw typeError('options.externalDataDir', 'a string', opts.externalDataDir);
  if (opts.inputShapes !== undefined && (opts.inputShapes === null || typeof opts.inputShapes !== 'object')) throw typeError('options.inputShapes', 'an object', opts.inputShapes);
  if (opts.bindInputs !== undefined && (opts.bindInputs === null || typeof opts.bindInputs !== 'object')) throw typeError('options.bindInputs', 'an object', opts.bindInputs);

  const bytes = typeof source === 'string' ? await readModelFile(source, 'source') : source;
  if (bytes.length === 0) throw emptyModel('source');
  if (bytes[0] === 0x4b && bytes[1] === 0x49 && bytes[2] === 0x4c && bytes[3] === 0x4e) {
    throw new KilnError(ErrorCode.CORRUPT_MODEL, `Expected an ONNX model for source but received a .kiln file${typeof source === 'string' ? ` ('${source}')` : ''}: read it with loadGraph() or InferenceSession.create()`);
  }
  const baseDir = opts.externalDataDir ?? (typeof source === 'string' ? dirname(source) : undefined);

  const model = await guard(async () => decodeModel(bytes));
  if (opts.bindInputs !== undefined) bindModelInputs(model, opts.bindInputs, 'options.bindInputs');
  const raw = await guard(async () => {
    const opsets = modelOpsets(model);
    const external = new Map<ITensorProto, Uint8Array>();
    for (const { tensor, what } of externalTensors(model)) external.set(tensor, await readExternalData(tensor, what, baseDir));
    return readGraph(model, opsets, external);
  });
  applyInputShapes(raw, opts.inputShapes);
  return guard(async () => convert(raw));
}

/** Whatever a malformed file trips over inside Kiln is still a corrupt model to the caller. */
async function guard<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof KilnError) throw err;
    throw corrupt(`Expected a consistent ONNX model but reading it failed: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

function applyInputShapes(raw: RawGraph, shapes: Record<string, readonly Dim[]> | undefined): void {
  if (shapes === undefined) return;
  for (const [name, shape] of Object.entries(shapes)) {
    const input = raw.inputs.find((i) => i.name === name);
    if (input === undefined) throw typeError(`options.inputShapes['${name}']`, `the name of a graph input (${raw.inputs.map((i) => `'${i.name}'`).join(', ')})`, name);
    if (!Array.isArray(shape) || shape.length !== input.shape.length || !shape.every((d) => (typeof d === 'string' && d !== '') || (Number.isInteger(d) && (d as number) >= 1 && (d as number) <= MAX_DIM))) {
      throw typeError(`options.inputShapes['${name}']`, `${input.shape.length} dimensions (positive integers or names)`, shape);
    }
    input.shape = shape.slice();
  }
}

/** Normalise, fold, infer; then drop what nothing reads and report what the runtime lacks. */
function convert(raw: RawGraph): Graph {
  const known = new Map<string, KnownValue>(raw.initializers);
  const shapes = new Map<string, Shape>();
  for (const i of raw.inputs) shapes.set(i.name, i.shape.slice());
  for (const [name, t] of raw.initializers) shapes.set(name, t.dims.slice());
  const graphOutputs = new Set(raw.outputs.map((o) => o.name));

  const readers = new Map<string, number>();
  const readerOps = new Map<string, string[]>();
  for (const n of raw.nodes) {
    for (const i of n.inputs) {
      readers.set(i, (readers.get(i) ?? 0) + 1);
      readerOps.set(i, [...(readerOps.get(i) ?? []), n.op]);
    }
  }
  const taken = new Set<string>([...shapes.keys(), ...raw.nodes.flatMap((n) => [n.name, ...n.outputs])]);
  const ctx: NormalizeContext = {
    opset: raw.opset,
    known: (name) => known.get(name),
    shape: (name) => shapes.get(name),
    used: (name) => graphOutputs.has(name) || (readers.get(name) ?? 0) > 0,
    elemType: (name) => raw.elemTypes.get(name),
    fresh: (base) => {
      let name = base;
      for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
      taken.add(name);
      return name;
    },
  };

  const nodes: GraphNode[] = [];
  /** Run-time values of element type bool (a Cast to FLOAT of one is a real conversion). */
  const boolValues = new Set<string>();
  /** ArgMax / ArgMin indices (exact integers in float32 plan values), by value name, and their Identity views. */
  const indexValues = new Map<string, GraphNode>();
  /**
   * Casts where a graph input enters or a graph output leaves: kept as Casts for the session,
   * which turns them into its edge conversions (runtime/edge-types.ts).
   */
  const edgeCasts = new Set<GraphNode>();
  const graphInputs = new Map(raw.inputs.map((i) => [i.name, i.dtype]));
  /** Domain and version of each model node, by node name, for the error that lists problems. */
  const versionLabels = new Map(raw.nodes.map((n) => [n.name, versionLabel(raw, n)]));
  /** Why a kept node cannot run, by node name. */
  const unsupported = new Map<string, string>();
  /** Values whose shape is unknown because an unsupported node is upstream. */
  const poisoned = new Set<string>();
  /** Elements constant folding created so far (a small file must not expand without bound). */
  let foldedElements = 0;
  // Quantization nodes wait for liftQuantized (import-quant.ts), after the float nodes are normalised.
  /** Index tensors computed from the dynamic batch size (batch-index.ts), by value name. */
  const batchIndices = new Map<string, BatchIndex>();
  const batchIndexCtx: BatchIndexContext = {
    batchIndex: (name) => batchIndices.get(name),
    known: (name) => known.get(name),
    shape: (name) => shapes.get(name),
    producer: (name) => {
      for (let i = nodes.length - 1; i >= 0; i--) if (nodes[i]!.outputs.includes(name)) return nodes[i];
      return undefined;
    },
    fresh: ctx.fresh,
  };
  const quantEnv: QuantImportEnv = { ctx, known, shapes, graphOutputs, readerOps: (v) => readerOps.get(v) ?? [] };

  for (const rawNode of raw.nodes) {
    if (rawNode.inputs.some((i) => poisoned.has(i))) {
      // Downstream of something Kiln cannot run: only report it if it is unknown as well.
      for (const o of rawNode.outputs) poisoned.add(o);
      const reason = rawNode.domain !== '' ? 'not implemented' : rawNode.op === 'CastLike' ? undefined : !(RUNTIME_OPS.has(rawNode.op) || FOLDABLE_OPS.has(rawNode.op)) ? notImplementedReason(rawNode.op) : unimplementedForm(raw, rawNode);
      if (reason !== undefined) unsupported.set(rawNode.name, reason);
      nodes.push(plain(rawNode));
      continue;
    }
    const reject = (reason: string): void => {
      unsupported.set(rawNode.name, reason);
      for (const o of rawNode.outputs) poisoned.add(o);
      nodes.push(plain(rawNode));
    };
    const versionProblem = unimplementedForm(raw, rawNode);
    if (versionProblem !== undefined) {
      reject(versionProblem);
      continue;
    }
    if (isQuantOnnxNode(rawNode.op, rawNode.domain)) {
      try {
        addQuantNode(plain(rawNode), quantEnv, nodes);
      } catch (err) {
        if (err instanceof Unsupported) reject(err.reason);
        else throw nodeError(rawNode, err);
      }
      continue;
    }
    if (rawNode.domain !== '') {
      reject('not implemented');
      continue;
    }
    let canonical: GraphNode[] | undefined;
    try {
      canonical = normalizeNode(plain(rawNode), ctx);
    } catch (err) {
      if (err instanceof Unsupported) {
        reject(err.reason);
        continue;
      }
      throw nodeError(rawNode, err);
    }
    if (canonical === undefined) {
      reject(notImplementedReason(rawNode.op));
      continue;
    }
    if (rawNode.skippedAttrs.length > 0 && RUNTIME_OPS.has(rawNode.op)) {
      throw corrupt(`${rawNode.op} '${rawNode.name}' has attributes of a kind it never takes (${rawNode.skippedAttrs.join(', ')})`);
    }
    for (const node of canonical) {
      try {
        processNode(node);
      } catch (err) {
        throw nodeError(node, err);
      }
    }
  }

  function processNode(node: GraphNode): void {
    const index = batchIndexStep(node, batchIndexCtx);
    if (index !== undefined) {
      if (index.kind === 'index') {
        batchIndices.set(node.outputs[0]!, index.value);
        shapes.set(node.outputs[0]!, index.value.shape.slice());
      } else if (index.kind === 'nodes') {
        for (const [name, t] of index.constants) {
          known.set(name, t);
          shapes.set(name, t.dims.slice());
        }
        for (const n of index.nodes) processNode(n);
      } else {
        unsupported.set(node.name, index.reason);
        for (const o of node.outputs) poisoned.add(o);
        nodes.push(node);
      }
      return;
    }
    const values = node.inputs.map((n) => (n === '' ? undefined : known.get(n)));
    const inShapes = node.inputs.map((n) => (n === '' ? undefined : shapes.get(n)));
    // Graph outputs fold too: a constant output is returned as it is (InferenceSession, bound-session.ts).
    if (FOLDABLE_OPS.has(node.op)) {
      const folded = foldNode(node, values, inShapes, MAX_FOLD_TOTAL - foldedElements);
      if (folded !== undefined && node.outputs.every((o, i) => o === '' || folded[i] !== undefined)) {
        node.outputs.forEach((o, i) => {
          if (o === '') return;
          const v = folded[i]!;
          foldedElements += isSymbolic(v) ? 0 : v.size;
          known.set(o, v);
          shapes.set(o, isSymbolic(v) ? (v.scalar ? [] : [v.dims.length]) : v.dims.slice());
        });
        // A symbolic result keeps its node, in case a run-time node reads it (then reported).
        if (folded.some(isSymbolic)) nodes.push(node);
        return;
      }
    }
    // Kiln does no integer arithmetic: indices may only be Cast (to a float type or bool, or to
    // int64 where they leave the model: edge-types.ts) or leave the model as they are.
    // (Taken before a Cast to FLOAT becomes an Identity below: its output is a float value.)
    const indexView = node.op === 'Identity' && indexValues.has(node.inputs[0]!);
    const indexInput = node.op === 'Cast' || node.op === 'Identity' ? undefined : node.inputs.find((v) => indexValues.has(v));
    if (indexInput !== undefined) {
      const source = indexValues.get(indexInput)!;
      unsupported.set(node.name, `integer arithmetic: it reads the int64 indices '${indexInput}' of ${source.op} '${source.name}', which Kiln computes as float32 integers and lets only a Cast read`);
      for (const o of node.outputs) poisoned.add(o);
      nodes.push(node);
      return;
    }
    const castInput = node.op === 'Cast' ? graphInputs.get(node.inputs[0] ?? '') : undefined;
    // Run-time values are float32 (float64 ones included, computed at float32 precision: edge-types.ts)
    // or bool: a cast to float of a float value is the value itself.
    if (node.op === 'Cast' && (node.attrs.to === ONNX_FLOAT || node.attrs.to === 11) && !boolValues.has(node.inputs[0]!) && (castInput === undefined || castInput === 'float32')) node = { ...node, op: 'Identity', attrs: {} };
    // A Cast where a typed graph input enters or a graph output leaves becomes the session's edge conversion.
    // (A float32 input's Cast to BOOL is no conversion at the edge: the plan computes it, x != 0.)
    if (node.op === 'Cast' && ((castInput !== undefined && (castInput !== 'float32' || node.attrs.to !== ONNX_BOOL)) || graphOutputs.has(node.outputs[0] ?? ''))) {
      const reason = unheldTypeReason(Number(node.attrs.to));
      if (reason !== undefined) {
        unsupported.set(node.name, `Cast to ONNX type ${String(node.attrs.to)}: ${reason}`);
        for (const o of node.outputs) poisoned.add(o);
      } else {
        const s = inShapes[0];
        if (s === undefined) throw corrupt(`Expected a known shape for '${node.inputs[0]}' but received none`);
        shapes.set(node.outputs[0]!, s.slice());
        edgeCasts.add(node);
      }
      nodes.push(node);
      return;
    }
    const castElsewhere = node.op === 'Cast' && node.attrs.to !== ONNX_FLOAT && node.attrs.to !== ONNX_BOOL;
    if (!RUNTIME_OPS.has(node.op) || castElsewhere) {
      unsupported.set(node.name, node.op === 'Cast' ? `Cast to ONNX type ${String(node.attrs.to)} on values computed at run time (the runtime carries float32 and bool values only)` : FOLDABLE_OPS.has(node.op) ? 'on values computed at run time' : notImplementedReason(node.op));
      for (const o of node.outputs) poisoned.add(o);
      nodes.push(node);
      return;
    }
    const missing = node.inputs.find((n, i) => n !== '' && inShapes[i] === undefined);
    if (missing !== undefined) throw corrupt(`Expected a known shape for '${missing}' but received none`);
    const outShapes = inferNodeShapes(node, inShapes)!;
    node.outputs.forEach((o, i) => {
      if (o !== '' && outShapes[i] !== undefined) shapes.set(o, outShapes[i]!);
    });
    if (BOOL_RESULT_OPS.has(node.op) || (node.op === 'Cast' && node.attrs.to === ONNX_BOOL) || (BOOL_VIEW_OPS.has(node.op) && boolValues.has(node.inputs[0]))) {
      for (const o of node.outputs) boolValues.add(o);
    }
    if (node.op === 'ArgMax' || node.op === 'ArgMin') indexValues.set(node.outputs[0]!, node);
    else if (indexView) indexValues.set(node.outputs[0]!, indexValues.get(node.inputs[0]!)!);
    nodes.push(node);
  }

  let lifted: GraphNode[];
  try {
    lifted = liftQuantized(nodes, quantEnv, (node, reason) => unsupported.set(node.name, reason));
  } catch (err) {
    throw err instanceof KilnError ? err : corrupt(`Inconsistent quantized model: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const live = liveNodes(lifted, graphOutputs);
  const problems = live.filter((n) => unsupported.has(n.name) || (!RUNTIME_OPS.has(n.op) && !INT8_OPS.has(n.op) && !edgeCasts.has(n)));
  if (problems.length > 0) {
    const list = problems.map((n) => {
      const label = versionLabels.get(n.name);
      return `${n.op} '${n.name}' (${unsupported.get(n.name) ?? 'its result depends on a dynamic dimension'})${label === undefined ? '' : ` [${label}]`}`;
    });
    const types = [...new Set(problems.map((n) => n.op))].sort();
    throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Kiln cannot run ${problems.length} node(s) of this model, operator types ${types.join(', ')}: ${list.join('; ')}`);
  }
  checkDeclaredShapes(raw, shapes);

  const read = new Set(live.flatMap((n) => n.inputs));
  const produced = new Set(live.flatMap((n) => n.outputs));
  const initializers = new Map<string, Tensor>();
  for (const [name, v] of known) {
    if ((read.has(name) || graphOutputs.has(name)) && v instanceof Tensor && !produced.has(name)) initializers.set(name, v);
  }
  const outputs: ValueInfo[] = raw.outputs.map((o) => ({ name: o.name, dtype: o.dtype ?? 'float32', shape: shapes.get(o.name) ?? o.shape ?? [] }));
  return { name: raw.name, inputs: raw.inputs, outputs, nodes: live, initializers, metadata: raw.metadata };
}

/** 'domain D, version V': the operator version a node means (its since_version, by its domain's opset). */
function versionLabel(raw: RawGraph, n: RawNode): string {
  const opset = raw.domainOpsets.get(n.domain);
  const version = n.domain === '' ? resolveOpVersion(n.op, raw.opset) ?? raw.opset : opset;
  return `domain ${n.domain === '' ? 'ai.onnx' : n.domain}, version ${version ?? 'unknown (the domain is not imported)'}`;
}

/**
 * Why Kiln cannot run the version of a default-domain operator it knows that this node means,
 * or undefined (other nodes are judged by normalisation: unknown operators are not implemented).
 */
function unimplementedForm(raw: RawGraph, n: RawNode): string | undefined {
  if (n.domain !== '' || !(RUNTIME_OPS.has(n.op) || FOLDABLE_OPS.has(n.op) || isQuantOnnxNode(n.op, n.domain))) return undefined;
  const version = resolveOpVersion(n.op, raw.opset);
  if (version === undefined) return `ONNX defines no ${n.op} at opset ${raw.opset}`;
  const attribute = unimplementedAttribute(n.op, n.attrs);
  return unimplementedVersion(n.op, version) ?? (attribute === undefined ? undefined : `${n.op}-${version} with ${attribute}`);
}

function plain(n: RawNode): GraphNode {
  return { name: n.name, op: n.op, inputs: n.inputs.slice(), outputs: n.outputs.slice(), attrs: { ...n.attrs } };
}

function nodeError(node: GraphNode, err: unknown): KilnError {
  if (err instanceof KilnError && err.code === ErrorCode.CORRUPT_MODEL) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return corrupt(`Inconsistent node ${node.op} '${node.name}': ${reason}`, err);
}

/** Nodes some graph output depends on, in order. */
function liveNodes(nodes: GraphNode[], outputs: Set<string>): GraphNode[] {
  const needed = new Set(outputs);
  const keep = new Array<boolean>(nodes.length).fill(false);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (n.outputs.some((o) => needed.has(o))) {
      keep[k] = true;
      for (const i of n.inputs) if (i !== '') needed.add(i);
    }
  }
  return nodes.filter((_, k) => keep[k]);
}

/** Declared shapes (value_info, outputs) must agree with what the graph computes. */
function checkDeclaredShapes(raw: RawGraph, shapes: Map<string, Shape>): void {
  const declared = new Map(raw.declared);
  for (const o of raw.outputs) if (o.shape !== undefined) declared.set(o.name, o.shape);
  for (const [name, d] of declared) {
    const s = shapes.get(name);
    if (s === undefined) continue;
    const clash = d.length !== s.length || d.some((x, i) => typeof x === 'number' && typeof s[i] === 'number' && x !== s[i]);
    if (clash) throw corrupt(`Inconsistent shapes: value '${name}' is declared ${formatShape(d)} but the graph computes ${formatShape(s)}`);
  }
}
