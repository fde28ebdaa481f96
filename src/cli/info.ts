/** `kiln info`: what is inside a model file. */
import { stat } from 'node:fs/promises';

import { inferInt8GraphShapes } from '../graph/int8-ir.js';
import type { Graph } from '../graph/ir.js';
import { isStatic } from '../graph/shape-inference.js';
import type { Module } from '../nn/module.js';
import type { KilnFile } from '../runtime/kiln-file.js';
import { sparsityOf } from '../sparse-tensor.js';
import { readModelSource } from './model-source.js';
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
  // The per-tensor table is printed when some tensor is stored sparse (always in --json).
  const showTensors = tensors !== undefined && tensors.some((t) => t.layout !== 'dense');
  // Graph node names ('input_QuantizeLinear') are longer than a Sequential's layer indices.
  const nameWidth = Math.max(4, ...rows.map((r) => r.name.length + 2));
  const typeWidth = Math.max(14, ...rows.map((r) => r.type.length + 2));
  out.result(
    { model: modelPath, format, inputShape, layers: rows, parameters, macsPerImage: macs, fileBytes: bytes, ...(tensors ? { tensors } : {}), metadata },
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
        ...(showTensors ? tensorLines(tensors) : []),
        // Long values (the quantization report) are in --json only.
        ...Object.entries(metadata).map(([k, v]) => {
          const text = v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v);
          return `${k}: ${text.length > 120 ? `(${text.length} characters; see --json)` : text}`;
        }),
      ].join('\n'),
  );
}

function moduleRows(model: Module, inputShape: number[]): { inputShape: number[]; rows: LayerRow[] } {
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
function graphRows(graph: Graph): { inputShape: number[]; rows: LayerRow[] } {
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
