/**
 * Re-times a compressed model against its original on Kiln, one thread: each alone (back-to-back
 * runs) and both interleaved in one measurement, three rounds, at batch 1 and 64. The speed-up in a
 * run record comes from one interleaved measurement; this shows how much it moves with machine noise
 * (pin the process to a quiet core with `taskset -c 1` to take most of it away).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/compress-speed.js seedcnn.kiln compressed.kiln [minMs]
 */
import { readModelSource } from '../src/cli/model-source.js';
import { toGraph } from '../src/graph/from-module.js';
import type { Graph } from '../src/graph/ir.js';
import { benchmarkInput } from '../src/onnx/benchmark.js';
import { InferenceSession } from '../src/runtime/session.js';
import { measure, measurePair } from '../src/util/timing.js';

async function graphOf(path: string): Promise<Graph> {
  const source = await readModelSource(path);
  return source.kind === 'kiln' ? toGraph(source.module, source.inputShape) : source.graph;
}

async function main(): Promise<void> {
  const [originalPath, compressedPath, minMsArg] = process.argv.slice(2);
  if (!originalPath || !compressedPath) throw new Error('usage: node dist/bench/compress-speed.js original.kiln compressed.kiln [minMs]');
  const minMs = Number(minMsArg ?? 1000);
  const a = await InferenceSession.create(await graphOf(originalPath), { intraOpNumThreads: 1 });
  const b = await InferenceSession.create(await graphOf(compressedPath), { intraOpNumThreads: 1 });
  const shape = a.inputShapes[0].slice(1).map((d) => (typeof d === 'number' ? d : 1));
  process.stdout.write('batch | round | original alone ms | compressed alone ms | x alone | original interleaved ms | compressed interleaved ms | x interleaved\n');
  for (const batch of [1, 64]) {
    const x = benchmarkInput(batch, shape, 7 + batch);
    const ra = () => a.run({ [a.inputNames[0]]: x });
    const rb = () => b.run({ [b.inputNames[0]]: x });
    for (let round = 1; round <= 3; round++) {
      const ta = await measure(ra, { minMs, warmup: 3 });
      const tb = await measure(rb, { minMs, warmup: 3 });
      const [pa, pb] = await measurePair(ra, rb, { minMs });
      const f = (v: number): string => v.toFixed(4);
      process.stdout.write(`${batch} | ${round} | ${f(ta.medianMs)} | ${f(tb.medianMs)} | ${(ta.medianMs / tb.medianMs).toFixed(2)} | ${f(pa.medianMs)} | ${f(pb.medianMs)} | ${(pa.medianMs / pb.medianMs).toFixed(2)}\n`);
    }
  }
  a.release();
  b.release();
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exitCode = 1;
});
