/**
 * What each stage's model is worth, measured the same way for all of them in one process: held-out
 * accuracy and confusion on the inference runtime, the .kiln file's size, MACs, per-layer figures,
 * and latency of Kiln against ONNX Runtime on the same model (timed interleaved, matched threads).
 */
import { stat } from 'node:fs/promises';

import { benchmarkInput } from '../onnx/benchmark.js';
import { exportModel } from '../onnx/export.js';
import { loadOnnxRuntime } from '../onnx/onnxruntime.js';
import type { Dataset } from '../data/dataset.js';
import type { Graph } from '../graph/ir.js';
import { sessionConfusion } from '../runtime/accuracy.js';
import { InferenceSession } from '../runtime/session.js';
import { stepTexts } from '../runtime/step-kernels.js';
import { measurePair, measure } from '../util/timing.js';
import { layerRecords } from './layers.js';
import { graphOf, saveState } from './model-state.js';
import type { ModelState } from './model-state.js';
import type { LatencyCell, StageRecord } from './record.js';
import type { MeasureSettings } from './recipe.js';

export interface Scored {
  accuracy: number;
  /** Rows true class, columns predicted. */
  confusion: number[][];
}

/** Held-out accuracy and confusion of the state's model on Kiln's runtime. */
export async function score(state: ModelState, validation: Dataset): Promise<Scored> {
  const session = await InferenceSession.create(graphOf(state));
  try {
    const { confusion, classes } = await sessionConfusion(session, validation);
    const rows = Array.from({ length: classes }, (_, r) => Array.from(confusion.subarray(r * classes, (r + 1) * classes)));
    const correct = rows.reduce((s, row, r) => s + row[r], 0);
    return { accuracy: validation.length ? correct / validation.length : 0, confusion: rows };
  } finally {
    session.release();
  }
}

/** The figures `measureState` adds to a stage's record. */
export type Measured = Pick<StageRecord, 'fileBytes' | 'parameters' | 'macs' | 'nonZeroMacs' | 'precision' | 'latency' | 'layers'>;

/**
 * Saves the state to `path` (its size is the record's), then times it. ORT runs the state's ONNX
 * export (QDQ for int8; ORT stores pruned weights dense whatever Kiln does).
 */
export async function measureState(state: ModelState, path: string, settings: MeasureSettings, metadata: Record<string, unknown>): Promise<Measured> {
  await saveState(state, path, metadata);
  const fileBytes = (await stat(path)).size;
  const graph = graphOf(state);
  const session = await InferenceSession.create(graph, { intraOpNumThreads: settings.threads });
  try {
    const layers = layerRecords(graph, stepTexts(session), state.kind === 'graph' ? state.quantization : undefined);
    const macs = layers.reduce((s, l) => s + l.macs, 0);
    const nonZeroMacs = Math.round(layers.reduce((s, l) => s + l.macs * (1 - l.sparsity), 0));
    let parameters = 0;
    for (const t of graph.initializers.values()) parameters += t.size;
    const latency = await time(session, graph, settings);
    return { fileBytes, parameters, macs, nonZeroMacs, precision: state.kind === 'graph' ? 'int8' : 'fp32', latency, layers };
  } finally {
    session.release();
  }
}

async function time(session: InferenceSession, graph: ReturnType<typeof graphOf>, settings: MeasureSettings): Promise<LatencyCell[]> {
  const shape = session.inputShapes[0].slice(1).map((d) => (typeof d === 'number' ? d : 1));
  let ortSession: import('onnxruntime-node').InferenceSession | undefined;
  let ort: typeof import('onnxruntime-node') | undefined;
  if (settings.ort) {
    try {
      ort = await loadOnnxRuntime();
      ortSession = await ort.InferenceSession.create(exportModel(graph), {
        intraOpNumThreads: settings.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    } catch {
      // A model ORT cannot load (or no ORT at all) still gets Kiln's figures.
      ortSession = undefined;
    }
  }
  const cells: LatencyCell[] = [];
  try {
    for (const batch of settings.batches) {
      const x = benchmarkInput(batch, shape, 7 + batch);
      const kilnRun = () => session.run({ [session.inputNames[0]]: x });
      if (ortSession && ort) {
        const ortX = new ort.Tensor('float32', x.data, x.dims);
        const s = ortSession;
        const [k, o] = await measurePair(kilnRun, () => s.run({ [s.inputNames[0]]: ortX }), { minMs: settings.minMs });
        cells.push({ batch, threads: settings.threads, kilnMs: k.medianMs, ortMs: o.medianMs });
      } else {
        const k = await measure(kilnRun, { minMs: settings.minMs, warmup: 3 });
        cells.push({ batch, threads: settings.threads, kilnMs: k.medianMs });
      }
    }
  } finally {
    await ortSession?.release();
  }
  return cells;
}

/**
 * The original and the output model on Kiln, timed against each other in one interleaved
 * measurement per batch: their ratio is the pipeline's speed-up, with load on the machine hitting
 * both alike (stage figures taken minutes apart would not share it).
 */
export async function timeAgainstOriginal(original: Graph, output: Graph, settings: MeasureSettings): Promise<{ batch: number; threads: number; originalMs: number; outputMs: number; vsOriginal: number }[]> {
  const a = await InferenceSession.create(original, { intraOpNumThreads: settings.threads });
  const b = await InferenceSession.create(output, { intraOpNumThreads: settings.threads });
  try {
    const shape = a.inputShapes[0].slice(1).map((d) => (typeof d === 'number' ? d : 1));
    const out = [];
    for (const batch of settings.batches) {
      const x = benchmarkInput(batch, shape, 7 + batch);
      const [ta, tb] = await measurePair(() => a.run({ [a.inputNames[0]]: x }), () => b.run({ [b.inputNames[0]]: x }), { minMs: settings.minMs });
      out.push({ batch, threads: settings.threads, originalMs: ta.medianMs, outputMs: tb.medianMs, vsOriginal: ta.medianMs / tb.medianMs });
    }
    return out;
  } finally {
    a.release();
    b.release();
  }
}
