// Run by test/unit/session-soak.test.ts in a child process (node --expose-gc --import
// register-ts-source.mjs): 100,000 InferenceSession runs of a small SeedCNN, fp32 and int8, with
// and without micro-batching, batch sizes 1..16 and 1..64 concurrent callers, round after round.
// Prints one JSON line: the runs done, RSS (MiB, after a full gc, less the scratch arenas the
// sessions report holding) sampled every 5% of the runs,
// the sample taken when warm-up ended (25% of the runs: every session x callers pairing has run by
// then, 12 rounds of ~2,000 runs), and the sessions' counters at the end.
import { seedCNN } from '../../src/nn/models.js';
import { benchmarkInput } from '../../src/onnx/index.js';
import { quantize } from '../../src/quant/ptq.js';
import { InferenceSession } from '../../src/runtime/session.js';
import type { Tensor } from '../../src/tensor.js';

const TOTAL = Number(process.argv[2] ?? 100_000);
const SHAPE = [1, 28, 28];
const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 7 }).eval();
const { graph: int8 } = await quantize(net, benchmarkInput(32, SHAPE, 3), { method: 'minmax', reportImages: 0 });
let batches = 0;
const sessions = [
  await InferenceSession.create(net, { inputShape: SHAPE }),
  await InferenceSession.create(int8),
  await InferenceSession.create(net, { inputShape: SHAPE, batching: { maxBatchSize: 32, maxDelayMs: 0, onBatch: () => void batches++ } }),
  await InferenceSession.create(int8, { batching: { maxBatchSize: 32, maxDelayMs: 2, onBatch: () => void batches++ } }),
];
const SIZES = [1, 1, 2, 1, 4, 1, 1, 16, 3, 1, 8, 1];
const inputs = new Map<number, Tensor<'float32'>>(SIZES.map((b) => [b, benchmarkInput(b, SHAPE, 100 + b)]));
const CALLERS = [1, 4, 16, 64, 8, 32];

let done = 0;
let issued = 0;
const rss: number[] = [];
let nextSample = TOTAL / 20;
let warmSample = -1;
const started = Date.now();

async function sample(): Promise<void> {
  global.gc!();
  await new Promise((resolve) => setImmediate(resolve));
  global.gc!();
  // Less the scratch arenas the sessions keep on purpose (they grow with concurrency, not runs).
  const held = sessions.reduce((sum, s) => sum + s.info().arenaBytesHeld, 0);
  rss.push((process.memoryUsage().rss - held) / 2 ** 20);
  if (warmSample < 0 && done >= TOTAL / 4) warmSample = rss.length - 1;
}

for (let round = 0; done < TOTAL; round++) {
  const session = sessions[round % sessions.length]!;
  const callers = CALLERS[round % CALLERS.length]!;
  const perCaller = Math.max(1, Math.floor(2000 / callers));
  // int8-with-timer session: only concurrent callers (a lone caller would wait 2 ms a run).
  const realCallers = session === sessions[3] && callers < 16 ? 16 : callers;
  await Promise.all(Array.from({ length: realCallers }, async (_, c) => {
    for (let k = 0; k < perCaller && issued < TOTAL; k++) {
      issued++;
      const b = SIZES[(round * 7 + c * 3 + k) % SIZES.length]!;
      const out = await session.run({ input: inputs.get(b)! });
      if (Object.values(out)[0]!.dims[0] !== b) throw new Error(`expected ${b} rows`);
      done++;
    }
  }));
  if (done >= nextSample) {
    await sample();
    while (nextSample <= done) nextSample += TOTAL / 20;
  }
}
const counters = sessions.map((s) => ({ pending: s.pendingRuns, queued: s.queuedRuns }));
for (const s of sessions) s.release();
console.log(JSON.stringify({ runs: done, batches, seconds: (Date.now() - started) / 1000, rss, warmSample, counters }));
