// Run by test/unit/session-workers.test.ts in a plain child process (node --expose-gc --import
// register-ts-source.mjs), so that what a Worker does to the process (a crash, leaked memory) is
// seen in a process of its own. Workers inherit the TypeScript loader through execArgv.
//   parity <fp32.kiln> <int8.kiln> <images.f32>: 3 Workers at once run both models, with and
//     without batching; prints JSON: for each worker and case, whether its logits equal the main
//     thread's bit for bit.
//   terminate <fp32.kiln> <int8.kiln> <images.f32> <rounds>: Workers terminated while runs are in
//     flight and queued, round after round; prints JSON: RSS (MB) after each round (after gc).
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { BATCHING, runAll } from './session-worker.js';

const [mode, fp32, int8, imagesPath, roundsArg] = process.argv.slice(2);
const bytes = readFileSync(imagesPath!);
const images = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const models = { fp32: fp32!, int8: int8! };
const workerUrl = new URL('./session-worker.ts', import.meta.url);
const PER = 784;
const digit = (i: number, n = 1): Tensor<'float32'> => new Tensor('float32', images.slice(i * PER, (i + n) * PER), [n, 1, 28, 28]);

function start(workerData: object): Worker {
  return new Worker(workerUrl, { workerData });
}

function message(worker: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
  });
}

const same = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

if (mode === 'parity') {
  const count = 48;
  const want: Record<string, { singles: Float32Array; whole: Float32Array }> = {};
  for (const [label, path] of Object.entries(models)) {
    for (const batched of [false, true]) {
      const session = await InferenceSession.create(path, { inputShape: [1, 28, 28], ...(batched ? { batching: BATCHING } : {}) });
      want[`${label}${batched ? ' batched' : ''}`] = await runAll(session, count, digit);
      session.release();
    }
  }
  const workers = [0, 1, 2].map(() => start({ mode: 'parity', models, images, count }));
  const answers = (await Promise.all(workers.map(message))) as Record<string, { singles: Float32Array; whole: Float32Array }>[];
  await Promise.all(workers.map((w) => w.terminate()));
  const report = answers.map((got) => Object.fromEntries(Object.entries(want).map(([k, w]) => [k, got[k] !== undefined && same(got[k].singles, w.singles) && same(got[k].whole, w.whole)])));
  // The main thread's own results: batched singles equal unbatched singles equal the batch run.
  const mainConsistent = Object.keys(models).every((m) => same(want[m]!.singles, want[`${m} batched`]!.singles) && same(want[m]!.singles, want[m]!.whole));
  console.log(JSON.stringify({ workers: report, mainConsistent }));
} else if (mode === 'terminate') {
  const rounds = Number(roundsArg);
  const rss: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const worker = start({ mode: 'busy', models, images, count: 256, model: r % 2 === 0 ? 'fp32' : 'int8' });
    const errors: unknown[] = [];
    worker.on('error', (e) => errors.push(e));
    const ready = await message(worker);
    if (ready !== 'running') throw new Error(`unexpected message ${String(ready)}`);
    // Let the runs get going on the runner threads, then end the worker in the middle of them.
    await new Promise((resolve) => setTimeout(resolve, 5 + (r % 4) * 10));
    await worker.terminate();
    if (errors.length > 0) throw errors[0];
    global.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
    global.gc?.();
    rss.push(process.memoryUsage().rss / 2 ** 20);
  }
  // This environment still runs, async and inline.
  const session = await InferenceSession.create(models.int8, { inputShape: [1, 28, 28] });
  const a = await session.run({ input: digit(0, 64) });
  const b = session.runSync({ input: digit(0, 64) });
  session.release();
  console.log(JSON.stringify({ rss, mainStillRuns: same(a.logits.data, b.logits.data) }));
} else {
  throw new Error(`unknown mode ${String(mode)}`);
}
