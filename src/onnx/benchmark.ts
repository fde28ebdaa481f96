/**
 * Kiln vs onnxruntime-node on the same ONNX file: same inputs, same process, interleaved blocks of back-to-back runs, each started once the
 * previous block's threads went idle (measureInterleaved),
 * matched thread counts. Used by `kiln bench model.onnx --vs-ort` and `npm run bench`.
 */
import { InferenceSession } from '../runtime/session.js';
import { castTensor } from '../runtime/edge-types.js';
import { Tensor } from '../tensor.js';
import { measurePair } from '../util/timing.js';
import type { Timing } from '../util/timing.js';
import { integer } from '../validate.js';
import { loadOnnxRuntime } from './onnxruntime.js';

export interface OrtBenchmarkOptions {
  /** Batch sizes to time. Default [1, 8, 64]. */
  batches?: readonly number[];
  /** Thread counts (intraOpNumThreads of both runtimes). Default [1, 2]. */
  threads?: readonly number[];
  /** Per-image input shape; default: the model's, with symbolic sizes refused. */
  inputShape?: readonly number[];
  /** Minimum timed milliseconds per cell. Default 1500. */
  minMs?: number;
}

export interface OrtBenchmarkRow {
  threads: number;
  batch: number;
  kiln: Timing;
  ort: Timing;
  kilnImagesPerSecond: number;
  ortImagesPerSecond: number;
  /** ORT median time / Kiln median time: above 1 means Kiln is faster. */
  speedup: number;
}

/** Deterministic pseudo-random input in [0, 1). */
export function benchmarkInput(batch: number, shape: readonly number[], seed: number): Tensor<'float32'> {
  const n = batch * shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 4294967296;
  }
  return new Tensor('float32', data, [batch, ...shape]);
}

export async function benchmarkAgainstOrt(model: string | Uint8Array, options: OrtBenchmarkOptions = {}): Promise<OrtBenchmarkRow[]> {
  const batches = (options.batches ?? [1, 8, 64]).map((b, i) => integer(`options.batches[${i}]`, b, 1, 1 << 20));
  const threadCounts = (options.threads ?? [1, 2]).map((t, i) => integer(`options.threads[${i}]`, t, 1, 1024));
  const ort = await loadOnnxRuntime();
  const rows: OrtBenchmarkRow[] = [];
  for (const threads of threadCounts) {
    const kiln = await InferenceSession.create(model, { intraOpNumThreads: threads });
    // A path as a string (external data is found beside it), else the bytes: the overloads take either.
    const ortSession = await ort.InferenceSession.create(model as string, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    try {
      const shape = options.inputShape ?? kiln.inputShapes[0].slice(1).map((d) => {
        if (typeof d !== 'number') throw new TypeError(`Expected a fixed image shape for options.inputShape but the model's input has symbolic size '${d}'`);
        return d;
      });
      const kilnIn = kiln.inputNames[0];
      const ortIn = ortSession.inputNames[0];
      for (const batch of batches) {
        // Of the model's input type (a float16 or float64 model), cast from the float32 draw.
        const x = castTensor(benchmarkInput(batch, shape, 7 + batch), kiln.inputTypes[0]!);
        const ortX = new ort.Tensor(x.type as 'float32', x.data as Float32Array, x.dims);
        const [tk, to] = await measurePair(
          () => kiln.run({ [kilnIn]: x }),
          () => ortSession.run({ [ortIn]: ortX }),
          { minMs: options.minMs ?? 1500 },
        );
        rows.push({
          threads,
          batch,
          kiln: tk,
          ort: to,
          kilnImagesPerSecond: (batch * 1000) / tk.medianMs,
          ortImagesPerSecond: (batch * 1000) / to.medianMs,
          speedup: to.medianMs / tk.medianMs,
        });
      }
    } finally {
      kiln.release();
      await ortSession.release();
    }
  }
  return rows;
}
