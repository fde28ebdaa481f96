/**
 * Helpers of the PTQ graph tests (quant-ptq-add, quant-ptq-lookup): seeded weights and images, a
 * graph run once on the native runtime, and top-1 classes for agreement counts.
 */
import type { Graph } from '../../src/graph/ir.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';

/** Deterministic uniform numbers in [-1, 1) (a 32-bit LCG). */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/** A float32 tensor of `dims` with values scale * next(). */
export function tensor(dims: number[], scale: number, next: () => number): Tensor<'float32'> {
  const n = dims.reduce((a, b) => a * b, 1);
  return new Tensor('float32', Float32Array.from({ length: n }, () => scale * next()), dims);
}

/** The graph's first output for input `x` (fed to its first input), on one thread. */
export async function runNative(graph: Graph, x: Tensor): Promise<Float32Array> {
  const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
  try {
    const out = await session.run({ [graph.inputs[0].name]: x });
    return out[graph.outputs[0].name].data as Float32Array;
  } finally {
    session.release();
  }
}

/** The index of the largest value of each row of `cols` values. */
export function argmaxRows(data: Float32Array, cols: number): number[] {
  return Array.from({ length: data.length / cols }, (_, r) => {
    let best = 0;
    for (let c = 1; c < cols; c++) if (data[r * cols + c] > data[r * cols + best]) best = c;
    return best;
  });
}
