// A worker_threads Worker body for test/support/session-workers-child.ts: InferenceSessions made
// and run inside the Worker's own environment (the addon loaded again there).
//   mode 'parity': every model x batching on/off, single-digit runs at once and one batch run;
//                  posts the logits back.
//   mode 'busy':   leaves heavy runs (and queued batched runs) in flight, posts 'running', and
//                  keeps going until the parent terminates it.
import { parentPort, workerData } from 'node:worker_threads';

import { InferenceSession, type SessionOptions } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';

interface Data {
  mode: 'parity' | 'busy';
  models: Record<string, string>;
  images: Float32Array;
  count: number;
  /** 'busy': the model to load. */
  model?: string;
}

const data = workerData as Data;
const PER = 784;
const digit = (i: number, n = 1): Tensor<'float32'> => new Tensor('float32', data.images.slice(i * PER, (i + n) * PER), [n, 1, 28, 28]);

/** Single-digit runs all at once, then one run of every digit: the logits of each, back to back. */
export async function runAll(session: InferenceSession, count: number, at: (i: number, n?: number) => Tensor<'float32'>): Promise<{ singles: Float32Array; whole: Float32Array }> {
  const outs = await Promise.all(Array.from({ length: count }, (_, i) => session.run({ input: at(i) })));
  const singles = new Float32Array(count * 10);
  outs.forEach((o, i) => singles.set(o.logits.data, i * 10));
  const whole = (await session.run({ input: at(0, count) })).logits.data.slice();
  return { singles, whole };
}

export const BATCHING: SessionOptions['batching'] = { maxBatchSize: 16, maxDelayMs: 2 };

if (parentPort !== null && data?.mode === 'parity') {
  const results: Record<string, { singles: Float32Array; whole: Float32Array }> = {};
  for (const [label, path] of Object.entries(data.models)) {
    for (const batched of [false, true]) {
      const session = await InferenceSession.create(path, { inputShape: [1, 28, 28], ...(batched ? { batching: BATCHING } : {}) });
      results[`${label}${batched ? ' batched' : ''}`] = await runAll(session, data.count, digit);
      session.release();
    }
  }
  parentPort.postMessage(results);
} else if (parentPort !== null && data?.mode === 'busy') {
  const port = parentPort;
  const path = data.models[data.model!]!;
  const plain = await InferenceSession.create(path, { inputShape: [1, 28, 28] });
  const batched = await InferenceSession.create(path, { inputShape: [1, 28, 28], batching: { maxBatchSize: 64, maxDelayMs: 1000 } });
  const big = digit(0, data.count);
  // 64 runs of a whole batch always in flight (2 on the runner threads, the rest in their backlog,
  // each with its own 800 KB copy of the input), and single runs waiting in the batching queue.
  const keepBusy = (): void => {
    plain.run({ input: big }).then(keepBusy, () => {});
    void batched.run({ input: digit(0) }).catch(() => {});
  };
  for (let i = 0; i < 64; i++) keepBusy();
  port.postMessage('running');
}
