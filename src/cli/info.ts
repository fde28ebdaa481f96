/**
 * `kiln info`: what is inside a model file: its layers, then per Conv / Gemm weight its sparsity,
 * the pattern of its zeros, dense and packed bytes, how the file stores it and the kernel an
 * InferenceSession with default options chooses, then (for a .kiln file with packed tensors) the
 * per-tensor storage table.
 */
import { stat } from 'node:fs/promises';

import { inferInt8GraphShapes } from '../graph/int8-ir.js';
import type { Graph } from '../graph/ir.js';
import { isStatic } from '../graph/shape-inference.js';
import type { Module } from '../nn/module.js';
import { kilnStoredBytes, type KilnFile } from '../runtime/kiln-file.js';
import { sparsityOf } from '../sparse-tensor.js';
import { toGraph } from '../graph/from-module.js';
import { outputMajor, weightedNodes } from '../graph/weights.js';
import { detectPattern, type DetectedPattern } from '../prune/detect.js';
import { InferenceSession } from '../runtime/session.js';
import { kernelOf, stepTexts } from '../runtime/step-kernels.js';
import { toSparse, type SparseFormat } from '../sparse-tensor.js';
import { readModelSource, type ModelSource } from './model-source.js';
import { Output } from './output.js';

interface LayerRow {
  name: string;
  type: string;
  outputShape: number[];
  parameters: number;
  macs: number;
}

/** One tensor of a `.kiln` file: how it is stored and what that saves. */
export interface TensorRow {
  name: string;
  dtype: string;
  dims: number[];
  /** 'dense', 'sparse-csr' or 'sparse-bcsr'. */
  layout: string;
  /** 'csr', 'bcsr-1x4', 'bcsr-4x1' or 'bcsr-8x1' for a sparse tensor, else null. */
  format: string | null;
  /** Fraction of the tensor's elements that are zero (float32 and int8 tensors; else null). */
  sparsity: number | null;
  /** Bytes of the dense form. */
  denseBytes: number;
  /** Bytes the file stores for it (without alignment padding). */
  storedBytes: number;
}

/** The tensor table of a decoded `.kiln` file. */
export function tensorRows(file: KilnFile): TensorRow[] {
  return file.entries.map((e) => {
    const dense = file.tensors.get(e.name)!;
    return {
      name: e.name,
      dtype: e.dtype,
      dims: e.dims.slice(),
      layout: e.layout,
      format: file.sparse.get(e.name)?.format ?? null,
      sparsity: dense.type === 'float32' || dense.type === 'int8' ? sparsityOf(dense) : null,
      denseBytes: dense.data.byteLength,
      storedBytes: e.byteLength,
    };
  });
}

/** One Conv or Gemm / MatMul weight: its zeros, their pattern, its sizes and the kernel a session runs it on. */
export interface WeightRow {
  /** The layer: a Module's layer name ('3'), else the graph node's name. */
  layer: string;
  /** The graph node (its step in `session.info().steps`). */
  node: string;
  op: string;
  /** The weight initializer's name and dims. */
  weight: string;
  dims: number[];
  /** Fraction of the weight's elements that are zero (float32 and int8 weights; else null). */
  sparsity: number | null;
  /** The pattern its zeros follow ('dense' without zeros; see `detectPattern`), null for other dtypes. */
  pattern: DetectedPattern | null;
  /** Bytes of the dense weight. */
  denseBytes: number;
  /**
   * Bytes of the weight packed as a .kiln file stores it (CSR, or blocked CSR for a block pattern;
   * uint16 indices, alignment padding included), whether or not this file does; null without zeros.
   */
  packedBytes: number | null;
  /** How the file stores it: 'dense', 'csr', 'bcsr-1x4', ... (an ONNX file: 'dense'). */
  stored: string;
  /**
   * What an InferenceSession with default options (sparseKernels 'auto') runs: 'sparse <pattern> <n>%'
   * (with its batch condition), 'dense', or 'int8 dense'; null when no session could be built.
   */
  kernel: string | null;
  /** That session's step text for the node (null when it has none). */
  step: string | null;
}

const PACKED_FORMAT: Partial<Record<DetectedPattern, SparseFormat>> = { block8x1: 'bcsr-8x1', block4x1: 'bcsr-4x1', block1x4: 'bcsr-1x4' };

/**
 * The per-layer weight table: every Conv, Gemm or MatMul node with a constant weight, its
 * sparsity and pattern, dense and packed bytes, and the kernel a default session chooses for it
 * (the session is built once, timing sparse against dense where the weight is half zeros or more).
 */
export async function weightRows(source: ModelSource): Promise<WeightRow[]> {
  const graph = source.kind === 'kiln' ? toGraph(source.module, source.inputShape) : source.graph;
  let steps = new Map<string, string>();
  try {
    const session = source.kind === 'kiln' ? await InferenceSession.create(source.module, { inputShape: source.inputShape }) : await InferenceSession.create(graph);
    try {
      steps = stepTexts(session);
    } finally {
      session.release();
    }
  } catch {
    // A model the runtime cannot run still gets its table, without kernels.
  }
  const rows: WeightRow[] = [];
  for (const { node, weightName: name, weight: w, spatial } of weightedNodes(graph)) {
    const numeric = w.type === 'float32' || w.type === 'int8';
    const view = numeric ? outputMajor(node, w) : undefined;
    const pattern = view ? detectPattern(view.data, view.outputs, view.reduction, spatial) : null;
    const step = steps.get(node.name) ?? null;
    rows.push({
      layer: source.kind === 'kiln' && name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : node.name,
      node: node.name,
      op: node.op,
      weight: name,
      dims: w.dims.slice(),
      sparsity: numeric ? sparsityOf(w) : null,
      pattern,
      denseBytes: w.data.byteLength,
      packedBytes: numeric && pattern !== 'dense' ? kilnStoredBytes(toSparse(w, PACKED_FORMAT[pattern!] ?? 'csr')) : null,
      stored: source.kind === 'onnx' ? 'dense' : (source.file.sparse.get(name)?.format ?? 'dense'),
      kernel: step === null ? null : kernelOf(node.op, step),
      step,
    });
  }
  return rows;
}

/** Text lines of the per-layer weight table. */
function weightLines(rows: WeightRow[]): string[] {
  const width = Math.max(7, ...rows.map((r) => r.layer.length + 2));
  const bytes = (n: number | null): string => (n === null ? '-' : n.toLocaleString('en-US'));
  return [
    '',
    `${'layer'.padEnd(width)}${'op'.padEnd(13)}${'sparsity'.padStart(9)}  ${'pattern'.padEnd(13)}${'dense bytes'.padStart(12)}${'packed bytes'.padStart(14)}  ${'stored'.padEnd(10)}kernel`,
    ...rows.map(
      (r) =>
        `${r.layer.padEnd(width)}${r.op.padEnd(13)}${(r.sparsity === null ? '-' : `${(r.sparsity * 100).toFixed(1)}%`).padStart(9)}  ${(r.pattern ?? '-').padEnd(13)}` +
        `${bytes(r.denseBytes).padStart(12)}${bytes(r.packedBytes).padStart(14)}  ${r.stored.padEnd(10)}${r.kernel ?? '-'}`,
    ),
  ];
}

/** Text lines of the tensor table. */
function tensorLines(rows: TensorRow[]): string[] {
  const width = Math.max(8, ...rows.map((r) => r.name.length + 2));
  const dense = rows.reduce((s, r) => s + r.denseBytes, 0);
  const stored = rows.reduce((s, r) => s + r.storedBytes, 0);
  return [
    '',
    `${'tensor'.padEnd(width)}${'layout'.padEnd(12)}${'sparsity'.padStart(9)}${'dense bytes'.padStart(14)}${'stored bytes'.padStart(14)}`,
    ...rows.map(
      (r) =>
        `${r.name.padEnd(width)}${(r.format ?? r.layout).padEnd(12)}${(r.sparsity === null ? '-' : `${(r.sparsity * 100).toFixed(1)}%`).padStart(9)}` +
        `${r.denseBytes.toLocaleString('en-US').padStart(14)}${r.storedBytes.toLocaleString('en-US').padStart(14)}`,
    ),
    `${rows.filter((r) => r.layout !== 'dense').length} of ${rows.length} tensors stored sparse: ${stored.toLocaleString('en-US')} of ${dense.toLocaleString('en-US')} dense bytes`,
    '',
  ];
}

export async function infoCommand(modelPath: string, opts: { json?: boolean }): Promise<void> {
  const out = new Output(opts);
  const source = await readModelSource(modelPath);
  // An ONNX model is described from its imported graph, node by node, like a saved Graph.
  const { inputShape, rows } =
    source.kind === 'kiln' ? moduleRows(source.module, source.inputShape) : graphRows(source.graph);
  const format = source.kind === 'onnx' ? 'onnx' : 'kiln';
  const metadata = source.kind === 'onnx' ? {} : (source.file.metadata ?? {});
  const parameters = rows.reduce((s, r) => s + r.parameters, 0);
  const macs = rows.reduce((s, r) => s + r.macs, 0);
  const bytes = (await stat(modelPath)).size;
  const tensors = source.kind === 'onnx' ? undefined : tensorRows(source.file);
  const weights = await weightRows(source);
  // The per-tensor table is printed when some tensor is stored sparse (always in --json).
  const showTensors = tensors !== undefined && tensors.some((t) => t.layout !== 'dense');
  // Graph node names ('input_QuantizeLinear') are longer than a Sequential's layer indices.
  const nameWidth = Math.max(4, ...rows.map((r) => r.name.length + 2));
  const typeWidth = Math.max(14, ...rows.map((r) => r.type.length + 2));
  out.result(
    { model: modelPath, format, inputShape, layers: rows, parameters, macsPerImage: macs, fileBytes: bytes, weights, ...(tensors ? { tensors } : {}), metadata },
    () =>
      [
        `${modelPath}${format === 'onnx' ? ' (ONNX)' : ''}: input [${inputShape.join(', ')}], ${parameters.toLocaleString('en-US')} parameters, ` +
          `${macs.toLocaleString('en-US')} MACs per image, ${bytes.toLocaleString('en-US')} bytes`,
        '',
        `${'#'.padEnd(nameWidth)}${'layer'.padEnd(typeWidth)}${'output'.padEnd(18)}${'params'.padStart(10)}${'MACs'.padStart(14)}`,
        ...rows.map(
          (r) =>
            `${r.name.padEnd(nameWidth)}${r.type.padEnd(typeWidth)}${`[${r.outputShape.join(', ')}]`.padEnd(18)}` +
            `${r.parameters.toLocaleString('en-US').padStart(10)}${r.macs.toLocaleString('en-US').padStart(14)}`,
        ),
        ...weightLines(weights),
        ...(showTensors ? tensorLines(tensors) : Object.keys(metadata).length > 0 ? [''] : []),
        // Long values (the quantization report) are in --json only.
        ...Object.entries(metadata).map(([k, v]) => {
          const text = v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v);
          return `${k}: ${text.length > 120 ? `(${text.length} characters; see --json)` : text}`;
        }),
      ].join('\n'),
  );
}

export function moduleRows(model: Module, inputShape: number[]): { inputShape: number[]; rows: LayerRow[] } {
  const rows: LayerRow[] = [];
  let shape = [1, ...inputShape];
  const layers = model.children().length > 0 ? model.children() : [model];
  layers.forEach((layer: Module, i) => {
    const next = layer.outputShape(shape);
    rows.push({
      name: String(i),
      type: layer.config().type,
      outputShape: next.slice(1),
      parameters: layer.parameters().reduce((s, p) => s + p.value.size, 0),
      macs: layer.macs(shape),
    });
    shape = next;
  });
  return { inputShape, rows };
}

// A saved Graph (an int8 one from `kiln quantize`, or any imported graph): one row per node, its
// parameters the elements of the initializers it reads, its MACs those of the convolutions and
// matrix products (per image: output elements times the weight's reduction size).
export function graphRows(graph: Graph): { inputShape: number[]; rows: LayerRow[] } {
  const shapes = inferInt8GraphShapes(graph);
  const perImage = (name: string): number[] => {
    const s = shapes.get(name)?.slice(1) ?? [];
    return isStatic(s) ? s : [];
  };
  const rows = graph.nodes.map((node): LayerRow => {
    const weights = node.inputs.map((name) => graph.initializers.get(name)).filter((t) => t !== undefined);
    const outputShape = perImage(node.outputs[0] ?? '');
    const w = graph.initializers.get(node.inputs[1] ?? '');
    let macs = 0;
    if (w && (node.op === 'Conv' || node.op === 'QLinearConv')) {
      macs = outputShape.reduce((a, b) => a * b, 1) * w.dims.slice(1).reduce((a, b) => a * b, 1);
    } else if (w && ['Gemm', 'QLinearGemm', 'DynamicQGemm', 'MatMul'].includes(node.op)) {
      macs = w.size * (outputShape.length > 1 ? outputShape.slice(0, -1).reduce((a, b) => a * b, 1) : 1);
    }
    return { name: node.name, type: node.op, outputShape, parameters: weights.reduce((s, t) => s + t.size, 0), macs };
  });
  return { inputShape: perImage(graph.inputs[0]?.name ?? ''), rows };
}
