/**
 * InferenceSession micro-batching (SessionOptions.batching, src/runtime/micro-batcher.ts):
 * 1,000 concurrent single-digit runs on a trained SeedCNN (fp32 and int8) each get what an
 * unbatched run gives, in batches that really merged; bad requests reject alone; a failed merged
 * run falls back to runs of one; at most two merged runs in flight; maxDelayMs / maxBatchSize; caller buffers taken away right after
 * run(); release while queued; models whose rows must not be merged run alone.
 */
import { describe, expect, it } from 'vitest';

import { native } from '../../src/binding.js';
import { GraphBuilder, type Graph } from '../../src/graph/ir.js';
import { allocFloat32 } from '../../src/memory.js';
import { DataType } from '../../src/onnx/proto.js';
import { DEFAULT_BATCHES_IN_FLIGHT } from '../../src/runtime/micro-batcher.js';
import { type BatchReport, InferenceSession, type SessionOptions } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { digits, trainedSeedCnn } from '../support/trained-seed-cnn.js';
import { attr, int64Tensor, model as onnxModel, node, valueInfo } from './onnx-model-builder.js';

const MNIST = [1, 28, 28];
const trained = await trainedSeedCnn();
const { test } = trained;

/** The first index where two arrays differ, or 'equal'. */
function bitDiff(a: Float32Array, b: Float32Array): string {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return `[${i}] ${a[i]} vs ${b[i]}`;
  return 'equal';
}

/**
 * Holds the first `count` native runs (their work still starts at once) until `release()`;
 * `restore()` puts the real runPlan back.
 */
function holdRuns(count: number): { release: () => void; restore: () => void } {
  const runPlan = native.runPlan;
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  let calls = 0;
  native.runPlan = ((plan, args, async) => {
    const run = runPlan(plan, args, async);
    return calls++ < count ? held.then(() => run) : run;
  }) as typeof native.runPlan;
  return { release, restore: () => { native.runPlan = runPlan; } };
}

/** max |a - b| / max |b| */
function relDiff(a: Float32Array, b: Float32Array): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

async function sessionsOf(source: 'fp32' | 'int8', batching: SessionOptions['batching']): Promise<{ plain: InferenceSession; batched: InferenceSession }> {
  const model = source === 'fp32' ? trained.model : trained.int8;
  const plain = await InferenceSession.create(model, { inputShape: MNIST });
  const batched = await InferenceSession.create(model, { inputShape: MNIST, batching });
  return { plain, batched };
}

describe('micro-batching: 1,000 concurrent single-image runs', () => {
  const cases = [['int8', undefined], ['fp32', undefined], ['int8', 1], ['int8', 3]] as const;
  for (const [source, maxBatchesInFlight] of cases) {
    const limit = maxBatchesInFlight ?? DEFAULT_BATCHES_IN_FLIGHT;
    it(`${source} SeedCNN on MNIST digits, ${maxBatchesInFlight === undefined ? 'default' : maxBatchesInFlight} batches in flight: every caller gets the unbatched result, in merged batches`, async () => {
      const reports: BatchReport[] = [];
      const { plain, batched } = await sessionsOf(source, {
        maxBatchSize: 32, maxDelayMs: 5, onBatch: (b) => reports.push(b), ...(maxBatchesInFlight === undefined ? {} : { maxBatchesInFlight }),
      });
      const n = 1000;
      const want: Float32Array[] = [];
      for (let i = 0; i < n; i++) want.push((await plain.run({ input: digits(test, i) })).logits.data);

      // Native runs in flight at once: at most `limit` merged batches.
      let active = 0;
      let mostActive = 0;
      const runPlan = native.runPlan;
      native.runPlan = ((plan, args, async) => {
        const run = runPlan(plan, args, async);
        if (run === undefined) return run;  // ran inline: over already
        mostActive = Math.max(mostActive, ++active);
        return run.finally(() => active--);
      }) as typeof native.runPlan;
      let got: Record<string, Tensor<'float32'>>[];
      try {
        const pending = Array.from({ length: n }, (_, i) => batched.run({ input: digits(test, i) }));
        // All 1,000 were made in one turn: the first `limit` full batches left at once, the rest waits behind them.
        expect(batched.queuedRuns).toBe(n - 32 * limit);
        expect(() => batched.release()).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_STATE', message: expect.stringMatching(/queued/) }));
        got = await Promise.all(pending);
      } finally {
        native.runPlan = runPlan;
      }
      expect(mostActive).toBe(limit);
      expect(batched.queuedRuns).toBe(0);
      expect(batched.pendingRuns).toBe(0);

      let exact = 0;
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const out = got[i].logits;
        expect(out.dims).toEqual([1, 10]);
        if (bitDiff(out.data, want[i]) === 'equal') exact++;
        else if (source === 'int8') expect(bitDiff(out.data, want[i]), `digit ${i}`).toBe('equal');
        worst = Math.max(worst, relDiff(out.data, want[i]));
      }
      console.log(`${source}: ${exact}/${n} bit-identical to the unbatched run, worst relative difference ${worst.toExponential(2)}; batch sizes ${reports.map((r) => r.size).join(' ')}`);
      expect(worst).toBeLessThanOrEqual(1e-6);
      // Merging really happened, within the bound, and every request was in exactly one batch.
      expect(reports.length).toBe(Math.ceil(n / 32));
      expect(Math.max(...reports.map((r) => r.size))).toBe(32);
      expect(reports.reduce((s, r) => s + r.size, 0)).toBe(n);
      expect(reports.reduce((s, r) => s + r.requests, 0)).toBe(n);
      // Predictions are a trained model's (the comparison above is not between constant outputs).
      let correct = 0;
      for (let i = 0; i < n; i++) {
        const row = got[i].logits.data;
        if (row.indexOf(Math.max(...row)) === test.labels[i]) correct++;
      }
      expect(correct / n).toBeGreaterThan(0.8);
      batched.release();
      plain.release();
    });
  }

  it('requests of several images merge with single ones; each gets its own rows and shape', async () => {
    const reports: BatchReport[] = [];
    const { plain, batched } = await sessionsOf('int8', { maxBatchSize: 16, maxDelayMs: 5, onBatch: (b) => reports.push(b) });
    const sizes = Array.from({ length: 60 }, (_, i) => 1 + ((i * 7) % 5));
    let start = 0;
    const inputs = sizes.map((b) => {
      const x = digits(test, start, b);
      start += b;
      return x;
    });
    const got = await Promise.all(inputs.map((x) => batched.run({ input: x })));
    for (let i = 0; i < inputs.length; i++) {
      const want = (await plain.run({ input: inputs[i] })).logits;
      expect(got[i].logits.dims).toEqual([sizes[i], 10]);
      expect(bitDiff(got[i].logits.data, want.data), `request ${i}`).toBe('equal');
    }
    expect(reports.every((r) => r.size <= 16)).toBe(true);
    expect(reports.some((r) => r.requests > 1)).toBe(true);
    expect(reports.reduce((s, r) => s + r.size, 0)).toBe(start);
    batched.release();
    plain.release();
  });
});

describe('micro-batching: each caller its own error', () => {
  it('bad feeds reject alone, with their own codes; good ones in the same turn resolve correctly', async () => {
    const reports: BatchReport[] = [];
    const { plain, batched } = await sessionsOf('int8', { maxBatchSize: 64, maxDelayMs: 5, onBatch: (b) => reports.push(b) });
    const kinds = ['good', 'shape', 'good', 'dtype', 'name', 'good', 'length', 'extra', 'good', 'null'] as const;
    const runs = Array.from({ length: 50 }, (_, i) => {
      const kind = kinds[i % kinds.length];
      const x = digits(test, i);
      switch (kind) {
        case 'good':
          return batched.run({ input: x });
        case 'shape':
          return batched.run({ input: new Tensor('float32', new Float32Array(27 * 28), [1, 1, 27, 28]) });
        case 'dtype':
          return batched.run({ input: new Tensor('int32', new Int32Array(784), [1, 1, 28, 28]) });
        case 'name':
          return batched.run({ image: x });
        case 'length':
          return batched.run({ input: { type: 'float32', data: new Float32Array(100), dims: [1, 1, 28, 28] } as unknown as Tensor });
        case 'extra':
          return batched.run({ input: x, other: x });
        case 'null':
          return batched.run({ input: null as unknown as Tensor });
      }
    });
    const goodCount = runs.filter((_, i) => kinds[i % kinds.length] === 'good').length;
    expect(batched.queuedRuns).toBe(goodCount);  // only valid requests joined the queue
    const settled = await Promise.allSettled(runs);
    const codes: Record<string, string> = { shape: 'ERR_KILN_SHAPE_MISMATCH', dtype: 'ERR_KILN_INVALID_ARG', name: 'ERR_KILN_INVALID_ARG', length: 'ERR_KILN_SHAPE_MISMATCH', extra: 'ERR_KILN_INVALID_ARG', null: 'ERR_KILN_INVALID_ARG' };
    for (let i = 0; i < runs.length; i++) {
      const kind = kinds[i % kinds.length];
      const s = settled[i];
      if (kind === 'good') {
        expect(s.status, `run ${i}`).toBe('fulfilled');
        const want = (await plain.run({ input: digits(test, i) })).logits.data;
        expect(bitDiff((s as PromiseFulfilledResult<Record<string, Tensor<'float32'>>>).value.logits.data, want)).toBe('equal');
      } else {
        expect(s.status, `run ${i} (${kind})`).toBe('rejected');
        expect((s as PromiseRejectedResult).reason, `run ${i} (${kind})`).toMatchObject({ code: codes[kind] });
      }
    }
    expect(reports.reduce((n, r) => n + r.requests, 0)).toBe(goodCount);
    batched.release();
    plain.release();
  });

  it('a merged native run that fails is run again one request at a time: each gets its own result or error', async () => {
    const reports: BatchReport[] = [];
    const { plain, batched } = await sessionsOf('fp32', { maxBatchSize: 8, maxDelayMs: 5, onBatch: (b) => reports.push(b) });
    const runPlan = native.runPlan;
    const batchesSeen: number[] = [];
    // Merged runs (batch > 1) fail; a run of one fails only for the digit whose first pixel is
    // marked, as if that image alone broke the kernel.
    native.runPlan = (plan, args, async) => {
      const a = args as { inputs: Float32Array[]; batch: number };
      batchesSeen.push(a.batch);
      if (a.batch > 1) throw Object.assign(new Error('merged run failed'), { code: 'ERR_KILN_NATIVE' });
      if (a.inputs[0][0] === -7) throw Object.assign(new Error('this image failed'), { code: 'ERR_KILN_NATIVE' });
      return runPlan(plan, args, async);
    };
    let settled: PromiseSettledResult<Record<string, Tensor<'float32'>>>[];
    try {
      settled = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => {
        const x = digits(test, i);
        if (i === 5) x.data[0] = -7;
        return batched.run({ input: x });
      }));
    } finally {
      native.runPlan = runPlan;
    }
    expect(batchesSeen).toEqual([8, 1, 1, 1, 1, 1, 1, 1, 1]);
    for (let i = 0; i < 8; i++) {
      if (i === 5) {
        expect(settled[i]).toMatchObject({ status: 'rejected', reason: { message: 'this image failed' } });
        continue;
      }
      expect(settled[i].status).toBe('fulfilled');
      const want = (await plain.run({ input: digits(test, i) })).logits.data;
      expect(bitDiff((settled[i] as PromiseFulfilledResult<Record<string, Tensor<'float32'>>>).value.logits.data, want)).toBe('equal');
    }
    expect(reports).toHaveLength(1);
    expect(batched.pendingRuns).toBe(0);
    batched.release();
    plain.release();
  });
});

describe('micro-batching: queue bounds', () => {
  it('a lone request waits maxDelayMs for others; a full batch does not; maxBatchSize splits a burst; larger requests run alone', async () => {
    const reports: BatchReport[] = [];
    const { plain, batched } = await sessionsOf('int8', { maxBatchSize: 4, maxDelayMs: 50, onBatch: (b) => reports.push(b) });
    const lone = await batched.run({ input: digits(test, 0) });
    expect(bitDiff(lone.logits.data, (await plain.run({ input: digits(test, 0) })).logits.data)).toBe('equal');
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ size: 1, requests: 1, queued: 0 });
    // Not a speed claim: only "it waited for its timer" (a timer never fires early; 10 ms of slack
    // for the event loop's cached clock).
    expect(reports[0].waitMs).toBeGreaterThanOrEqual(40);

    reports.length = 0;
    await Promise.all(Array.from({ length: 10 }, (_, i) => batched.run({ input: digits(test, i) })));
    expect(reports.map((r) => r.size)).toEqual([4, 4, 2]);
    // Both full batches left at once and settled while the last 2 requests waited for their timer.
    expect(reports.map((r) => r.queued)).toEqual([2, 2, 0]);
    expect(reports[0].waitMs).toBeLessThan(40);

    reports.length = 0;
    const big = digits(test, 0, 9);
    const [alone] = await Promise.all([batched.run({ input: big }), batched.run({ input: digits(test, 9, 3) })]);
    expect(bitDiff(alone.logits.data, (await plain.run({ input: big })).logits.data)).toBe('equal');
    expect(reports.map((r) => r.size)).toEqual([3]);  // the 9-image run did not go through a queue
    batched.release();
    plain.release();
  });

  it('requests made while two batches run wait for one to settle, then run as one batch', async () => {
    const reports: BatchReport[] = [];
    const { plain, batched } = await sessionsOf('int8', { maxBatchSize: 64, maxDelayMs: 0, onBatch: (b) => reports.push(b) });
    // The first two native runs (a request each, in turns of their own) are held until four more
    // requests have joined the queue, each in a turn of the event loop of its own.
    const { release, restore } = holdRuns(DEFAULT_BATCHES_IN_FLIGHT);
    const runs: Promise<Record<string, Tensor<'float32'>>>[] = [];
    try {
      runs.push(batched.run({ input: digits(test, 0) }));
      for (let i = 1; i <= 5; i++) {
        await new Promise((r) => setImmediate(r));
        runs.push(batched.run({ input: digits(test, i) }));
      }
      expect(batched.queuedRuns).toBe(4);
      release();
      const out = await Promise.all(runs);
      for (let i = 0; i <= 5; i++) expect(bitDiff(out[i].logits.data, (await plain.run({ input: digits(test, i) })).logits.data)).toBe('equal');
    } finally {
      restore();
    }
    expect(reports.map((r) => [r.size, r.requests])).toEqual([[1, 1], [1, 1], [4, 4]]);
    expect(reports[2].waitMs).toBeLessThan(15_000);
    batched.release();
    plain.release();
  });

  it('runWhenIdle: an idle session runs a turn\'s requests at once, whatever maxDelayMs; a request made while a batch runs still waits for its delay', async () => {
    const reports: BatchReport[] = [];
    const idle = await sessionsOf('int8', { maxBatchSize: 64, maxDelayMs: 60_000, runWhenIdle: true, onBatch: (b) => reports.push(b) });
    // Without runWhenIdle this would wait its 60 s (and time the test out).
    const lone = await idle.batched.run({ input: digits(test, 0) });
    expect(bitDiff(lone.logits.data, (await idle.plain.run({ input: digits(test, 0) })).logits.data)).toBe('equal');
    // The requests of one turn still merge.
    await Promise.all(Array.from({ length: 3 }, (_, i) => idle.batched.run({ input: digits(test, i) })));
    expect(reports.map((r) => [r.size, r.requests])).toEqual([[1, 1], [3, 3]]);
    expect(Math.max(...reports.map((r) => r.waitMs))).toBeLessThan(30_000);
    idle.batched.release();
    idle.plain.release();

    reports.length = 0;
    const { plain, batched } = await sessionsOf('int8', { maxBatchSize: 64, maxDelayMs: 50, runWhenIdle: true, onBatch: (b) => reports.push(b) });
    // The first native run is held until the second request (a turn later) has joined a queue.
    const { release, restore } = holdRuns(1);
    try {
      const first = batched.run({ input: digits(test, 0) });
      await new Promise((r) => setImmediate(r));
      const second = batched.run({ input: digits(test, 1) });
      expect(batched.queuedRuns).toBe(1);
      release();
      const out = await Promise.all([first, second]);
      for (let i = 0; i < 2; i++) expect(bitDiff(out[i].logits.data, (await plain.run({ input: digits(test, i) })).logits.data)).toBe('equal');
    } finally {
      restore();
    }
    expect(reports.map((r) => r.size)).toEqual([1, 1]);
    // The second opened its queue while the first ran: it waited for its timer (10 ms of slack for
    // the event loop's cached clock), although the first settled long before.
    expect(reports[1].waitMs).toBeGreaterThanOrEqual(40);
    batched.release();
    plain.release();
  });

  it('maxDelayMs 0 merges the runs made in one turn of the event loop', async () => {
    const reports: BatchReport[] = [];
    const { batched } = await sessionsOf('int8', { maxBatchSize: 64, maxDelayMs: 0, onBatch: (b) => reports.push(b) });
    await Promise.all(Array.from({ length: 5 }, (_, i) => batched.run({ input: digits(test, i) })));
    await batched.run({ input: digits(test, 5) });
    expect(reports.map((r) => r.size)).toEqual([5, 1]);
    batched.release();
  });

  it('a merged run under load leaves the event loop however cheap; an idle session\'s small runs stay inline', async () => {
    // Which runPlan calls asked for a runner thread (the last argument), in order. Every run here is
    // far below the inline budget (int8 SeedCNN, at most 4 images): the batcher alone decides.
    // The first batch of `waits` is held unsettled until the one queued behind it has started: without
    // that, a run finished before the next turn would leave the session idle, and which path the
    // second batch took would depend on thread timing (it did under ASan in CI).
    const asked: boolean[] = [];
    const runPlan = native.runPlan;
    let release = (): void => {};
    const held = new Promise<void>((r) => { release = r; });
    native.runPlan = ((plan, args, async) => {
      asked.push(async);
      const result = runPlan(plan, args, async);
      return asked.length === 4 ? held.then(() => result) : result;
    }) as typeof native.runPlan;
    const run = (s: InferenceSession, from: number, n: number): Promise<unknown> =>
      Promise.all(Array.from({ length: n }, (_, i) => s.run({ input: digits(test, from + i) })));
    const { batched: two } = await sessionsOf('int8', { maxBatchSize: 2, maxDelayMs: 0 });
    const { batched: wide } = await sessionsOf('int8', { maxBatchSize: 64, maxDelayMs: 0 });
    const { batched: waits } = await sessionsOf('int8', { maxBatchSize: 3, maxDelayMs: 0 });
    try {
      await run(two, 0, 2);  // filled up within the turn: more may be coming
      await run(two, 2, 1);  // alone
      await run(wide, 3, 3);  // all the requests there are, on an idle session
      const first = run(waits, 6, 3);  // filled up: leaves at once
      const behind = run(waits, 9, 2);  // due at the end of the turn, while the first is in flight
      for (let turn = 0; turn < 100 && asked.length < 5; turn++) await new Promise((r) => setImmediate(r));
      release();
      await Promise.all([first, behind]);
    } finally {
      native.runPlan = runPlan;
    }
    expect(asked).toEqual([true, false, false, true, true]);
    for (const s of [two, wide, waits]) s.release();
  });

  it('an onBatch that throws is a warning, not a failed run', async () => {
    const { batched } = await sessionsOf('int8', { maxBatchSize: 2, maxDelayMs: 1, onBatch: () => { throw new Error('metrics broke'); } });
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const out = await Promise.all([batched.run({ input: digits(test, 0) }), batched.run({ input: digits(test, 1) })]);
      expect(out).toHaveLength(2);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.message)).toContain('metrics broke');
    batched.release();
  });
});

describe('micro-batching: buffers, release, runSync', () => {
  // 16 / 5 ms: one merged run when the delay ends, as its cost decides; 4 / 0 ms: three batches
  // that fill up as requests arrive, so each runs on a runner thread (MicroBatcher.runNext) while the
  // callers' buffers go away.
  it.each([
    { maxBatchSize: 16, maxDelayMs: 5 },
    { maxBatchSize: 4, maxDelayMs: 0 },
  ])('inputs transferred, shrunk or overwritten right after run() leave the results unchanged (%o)', async (batching) => {
    const { plain, batched } = await sessionsOf('fp32', batching);
    const want = await Promise.all(Array.from({ length: 12 }, (_, i) => plain.run({ input: digits(test, i) })));
    const pending = Array.from({ length: 12 }, (_, i) => {
      const src = digits(test, i).data;
      let data: Float32Array;
      if (i % 4 === 0) data = src;
      else if (i % 4 === 1) data = new Float32Array(new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer)(784 * 4, { maxByteLength: 784 * 4 }));
      else if (i % 4 === 2) data = allocFloat32(784);  // lent memory: used in place by an unbatched run
      else data = src.slice();
      if (data !== src) data.set(src);
      const run = batched.run({ input: new Tensor('float32', data, [1, 1, 28, 28]) });
      if (i % 4 === 0) structuredClone(data.buffer, { transfer: [data.buffer as ArrayBuffer] });
      else if (i % 4 === 1) (data.buffer as unknown as { resize(n: number): void }).resize(0);
      else data.fill(Number.NaN);
      return run;
    });
    const got = await Promise.all(pending);
    for (let i = 0; i < 12; i++) expect(bitDiff(got[i].logits.data, want[i].logits.data), `request ${i}`).toBe('equal');
    batched.release();
    plain.release();
  });

  it('a queue reuses a settled batch\'s input buffers: batches of other sizes in turn, each result its own', async () => {
    const { plain, batched } = await sessionsOf('int8', { maxBatchSize: 16, maxDelayMs: 0 });
    // Bursts of 5, 16, 1, 9, 3 and 12 requests, one after the other: every queue after the first
    // few takes a settled batch's buffers (8 or 16 images of 784 floats: lent memory), whose rows
    // past its own still hold an earlier batch's images.
    const lend = native.lendArrayBuffer;
    let lent = 0;
    native.lendArrayBuffer = ((bytes) => {
      lent++;
      return lend(bytes);
    }) as typeof native.lendArrayBuffer;
    let digit = 0;
    const lentPerRound: number[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        const before = lent;
        for (const burst of [5, 16, 1, 9, 3, 12]) {
          const from = digit;
          digit += burst;
          const got = await Promise.all(Array.from({ length: burst }, (_, i) => batched.run({ input: digits(test, from + i) })));
          for (let i = 0; i < burst; i++) {
            expect(bitDiff(got[i].logits.data, (await plain.run({ input: digits(test, from + i) })).logits.data), `digit ${from + i}`).toBe('equal');
          }
        }
        lentPerRound.push(lent - before);
      }
    } finally {
      native.lendArrayBuffer = lend;
    }
    // Once the spare buffers have grown to the largest batch, later rounds allocate none.
    expect(lentPerRound[2]).toBe(0);
    batched.release();
    plain.release();
  });

  it('release is refused while runs are queued or merged runs are in flight; a released session refuses run()', async () => {
    const { plain, batched } = await sessionsOf('fp32', { maxBatchSize: 64, maxDelayMs: 20 });
    const pending = Promise.all(Array.from({ length: 3 }, (_, i) => batched.run({ input: digits(test, i) })));
    expect(batched.queuedRuns).toBe(3);
    expect(() => batched.release()).toThrow(expect.objectContaining({ name: 'KilnError', code: 'ERR_KILN_INVALID_STATE' }));
    // runSync runs at once and alone: it neither waits for the queue nor joins it.
    const sync = batched.runSync({ input: digits(test, 7) });
    expect(bitDiff(sync.logits.data, (await plain.run({ input: digits(test, 7) })).logits.data)).toBe('equal');
    expect(batched.queuedRuns).toBe(3);
    await pending;
    expect(batched.queuedRuns).toBe(0);
    batched.release();
    await expect(batched.run({ input: digits(test, 0) })).rejects.toThrow(expect.objectContaining({ code: 'ERR_KILN_DISPOSED' }));
    expect(batched.queuedRuns).toBe(0);
    plain.release();
  });
});

describe('micro-batching: which models merge', () => {
  function graph(build: (g: GraphBuilder) => { outputs: Graph['outputs'] }): Graph {
    const g = new GraphBuilder('t');
    return g.build(build(g).outputs);
  }

  it('a two-input batch-major model merges, each input concatenated along the batch', async () => {
    const model = graph((g) => {
      const x = g.addInput('x', ['N', 3]);
      const y = g.addInput('y', ['N', 3]);
      const w = g.addInitializer('w', new Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), [3, 4]));
      const sum = g.addNode('Add', [x, y]);
      const out = g.addNode('MatMul', [sum, w]);
      return { outputs: [{ name: out, dtype: 'float32', shape: ['N', 4] }] };
    });
    const reports: BatchReport[] = [];
    const s = await InferenceSession.create(model, { batching: { maxBatchSize: 8, maxDelayMs: 5, onBatch: (b) => reports.push(b) } });
    const row = (i: number, k: number): Tensor<'float32'> => new Tensor('float32', Float32Array.from([i, k * i, -i]), [1, 3]);
    const outs = await Promise.all(Array.from({ length: 6 }, (_, i) => s.run({ x: row(i, 1), y: row(i, 2) })));
    const name = s.outputNames[0];
    for (let i = 0; i < 6; i++) {
      // (x + y) = [2i, 3i, -2i]; times w.
      const v = [2 * i, 3 * i, -2 * i];
      const want = [0, 1, 2, 3].map((c) => v[0] * (1 + c) + v[1] * (5 + c) + v[2] * (9 + c));
      expect(Array.from(outs[i][name].data)).toEqual(want);
    }
    expect(reports.map((r) => r.size)).toEqual([6]);
    s.release();
  });

  it('constant outputs: the computed rows merge, each caller gets its own copy of the constants', async () => {
    const bytes = onnxModel({
      opset: 13,
      inputs: [valueInfo('x', ['N', 3])],
      outputs: [valueInfo('y', ['N', 3]), valueInfo('c', [2], DataType.INT64)],
      nodes: [node('Relu', ['x'], ['y'], [], 'relu'), node('Constant', [], ['c'], [attr.t('value', int64Tensor('v', [2], [7, 9]))], 'constant')],
    });
    const reports: BatchReport[] = [];
    const s = await InferenceSession.create(bytes, { batching: { maxBatchSize: 8, maxDelayMs: 5, onBatch: (b) => reports.push(b) } });
    const pending = Array.from({ length: 6 }, (_, i) => s.run<'float32' | 'int64'>({ x: new Tensor('float32', Float32Array.from([i + 1, -(i + 1), 2 * (i + 1)]), [1, 3]) }));
    expect(s.queuedRuns).toBe(6);
    expect(() => s.release()).toThrow(expect.objectContaining({ code: 'ERR_KILN_INVALID_STATE' }));
    const outs = await Promise.all(pending);
    for (let i = 0; i < 6; i++) {
      expect(Array.from(outs[i]!.y!.data as Float32Array)).toEqual([i + 1, 0, 2 * (i + 1)]);
      expect(outs[i]!.y!.dims).toEqual([1, 3]);
      expect(Array.from(outs[i]!.c!.data as BigInt64Array)).toEqual([7n, 9n]);
    }
    expect(outs[0]!.c!.data).not.toBe(outs[1]!.c!.data);
    expect(reports.map((r) => r.size)).toEqual([6]);
    s.release();
  });

  it('parameter inputs: requests feeding the same parameter values merge, other values queue apart', async () => {
    const bytes = onnxModel({
      opset: 13,
      inputs: [valueInfo('x', ['N', 3]), valueInfo('lo', [], DataType.FLOAT), valueInfo('hi', [], DataType.FLOAT)],
      outputs: [valueInfo('y', ['N', 3])],
      nodes: [node('Clip', ['x', 'lo', 'hi'], ['y'], [], 'clip')],
    });
    const reports: BatchReport[] = [];
    const s = await InferenceSession.create(bytes, { batching: { maxBatchSize: 8, maxDelayMs: 5, onBatch: (b) => reports.push(b) } });
    const scalar = (v: number): Tensor<'float32'> => new Tensor('float32', [v], []);
    const row = (i: number): Tensor<'float32'> => new Tensor('float32', Float32Array.from([-i - 1, 0.25 * i, i + 1]), [1, 3]);
    // The first run with each value builds its plan.
    await Promise.all([s.run({ x: row(0), lo: scalar(0), hi: scalar(1) }), s.run({ x: row(0), lo: scalar(-1), hi: scalar(1) })]);
    reports.length = 0;
    const lo = (i: number): number => (i % 2 === 0 ? 0 : -1);
    const pending = Array.from({ length: 8 }, (_, i) => s.run({ x: row(i), lo: scalar(lo(i)), hi: scalar(1) }));
    expect(s.queuedRuns).toBe(8);
    const outs = await Promise.all(pending);
    for (let i = 0; i < 8; i++) {
      const want = Array.from(row(i).data).map((v) => Math.min(1, Math.max(lo(i), v)));
      expect(Array.from(outs[i]!.y!.data)).toEqual(want);
    }
    expect(reports.map((r) => r.size)).toEqual([4, 4]);
    s.release();
  });

  it('a Softmax over the batch (a plan per batch size) and inputs sharing no batch run alone', async () => {
    const overBatch = graph((g) => {
      const x = g.addInput('x', ['N', 4]);
      return { outputs: [{ name: g.addNode('Softmax', [x], { axis: 0 }), dtype: 'float32', shape: ['N', 4] }] };
    });
    const reports: BatchReport[] = [];
    const s = await InferenceSession.create(overBatch, { batching: { maxBatchSize: 8, maxDelayMs: 5, onBatch: (b) => reports.push(b) } });
    const rows = await Promise.all(Array.from({ length: 5 }, (_, i) => s.run({ x: new Tensor('float32', Float32Array.from([i, 1, 2, 3]), [1, 4]) })));
    // A softmax over one row's batch of 1 is all ones; merged rows would share the sum instead.
    for (const r of rows) expect(Array.from(Object.values(r)[0].data)).toEqual([1, 1, 1, 1]);
    // The first batch learned that the plan needs the batch inside the image; later runs skip the queue.
    expect(reports.length).toBeLessThanOrEqual(1);
    await s.run({ x: new Tensor('float32', Float32Array.from([0, 1, 2, 3]), [1, 4]) });
    expect(reports.length).toBeLessThanOrEqual(1);
    expect(s.queuedRuns).toBe(0);
    s.release();

    const noBatch = graph((g) => {
      const a = g.addInput('a', [3]);
      const b = g.addInput('b', [2, 3]);
      return { outputs: [{ name: g.addNode('Add', [a, b]), dtype: 'float32', shape: [2, 3] }] };
    });
    const u = await InferenceSession.create(noBatch, { batching: { maxBatchSize: 8, maxDelayMs: 5 } });
    const b = new Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    const pending = [u.run({ a: new Tensor('float32', Float32Array.from([1, 1, 1]), [3]), b }), u.run({ a: new Tensor('float32', Float32Array.from([0, 0, 0]), [3]), b })];
    expect(u.queuedRuns).toBe(0);
    const [r1, r2] = await Promise.all(pending);
    expect(Array.from(Object.values(r1)[0].data)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(Array.from(Object.values(r2)[0].data)).toEqual([1, 2, 3, 4, 5, 6]);
    u.release();
  });
});

describe('micro-batching: option checks', () => {
  const net = trained.model;
  const bad: [unknown, string, RegExp][] = [
    [null, 'TypeError', /options\.batching.*null/],
    [{ maxDelayMs: 1 }, 'TypeError', /options\.batching\.maxBatchSize.*undefined/],
    [{ maxBatchSize: 0, maxDelayMs: 1 }, 'RangeError', /options\.batching\.maxBatchSize.*0 \(number\)/],
    [{ maxBatchSize: 2.5, maxDelayMs: 1 }, 'TypeError', /an integer for options\.batching\.maxBatchSize.*2\.5/],
    [{ maxBatchSize: '8', maxDelayMs: 1 }, 'TypeError', /options\.batching\.maxBatchSize.*"8" \(string\)/],
    [{ maxBatchSize: 65_537, maxDelayMs: 1 }, 'RangeError', /\[1, 65536\].*maxBatchSize.*65537/],
    [{ maxBatchSize: 8 }, 'TypeError', /options\.batching\.maxDelayMs.*undefined/],
    [{ maxBatchSize: 8, maxDelayMs: -1 }, 'RangeError', /options\.batching\.maxDelayMs.*-1/],
    [{ maxBatchSize: 8, maxDelayMs: Number.NaN }, 'RangeError', /finite number for options\.batching\.maxDelayMs.*NaN/],
    [{ maxBatchSize: 8, maxDelayMs: Infinity }, 'RangeError', /finite number for options\.batching\.maxDelayMs.*Infinity/],
    [{ maxBatchSize: 8, maxDelayMs: 60_001 }, 'RangeError', /\[0, 60000\].*maxDelayMs.*60001/],
    [{ maxBatchSize: 8, maxDelayMs: 1, onBatch: 'log' }, 'TypeError', /function for options\.batching\.onBatch.*"log"/],
    [{ maxBatchSize: 8, maxDelayMs: 1, maxBatchesInFlight: 0 }, 'RangeError', /\[1, 8\].*maxBatchesInFlight.*0 \(number\)/],
    [{ maxBatchSize: 8, maxDelayMs: 1, maxBatchesInFlight: 9 }, 'RangeError', /\[1, 8\].*maxBatchesInFlight.*9 \(number\)/],
    [{ maxBatchSize: 8, maxDelayMs: 1, maxBatchesInFlight: 1.5 }, 'TypeError', /an integer for options\.batching\.maxBatchesInFlight.*1\.5/],
    [{ maxBatchSize: 8, maxDelayMs: 1, maxBatchesInFlight: '2' }, 'TypeError', /options\.batching\.maxBatchesInFlight.*"2" \(string\)/],
    [{ maxBatchSize: 8, maxDelayMs: 1, runWhenIdle: 1 }, 'TypeError', /boolean for options\.batching\.runWhenIdle.*1 \(number\)/],
    [{ maxBatchSize: 8, maxDelayMs: 1, maxBatchDelay: 3 }, 'RangeError', /only the keys maxBatchSize, maxDelayMs, maxBatchesInFlight, runWhenIdle, onBatch for options\.batching.*maxBatchDelay/],
    [[8, 1], 'TypeError', /options\.batching.*array/],
  ];
  for (const [value, name, message] of bad) {
    it(`refuses batching ${JSON.stringify(value) ?? String(value)}`, async () => {
      await expect(InferenceSession.create(net, { inputShape: MNIST, batching: value as never })).rejects.toThrow(
        expect.objectContaining({ name, code: 'ERR_KILN_INVALID_ARG', message: expect.stringMatching(message) }),
      );
    });
  }
  it('accepts the bounds', async () => {
    for (const batching of [{ maxBatchSize: 1, maxDelayMs: 0, maxBatchesInFlight: 1 }, { maxBatchSize: 65_536, maxDelayMs: 60_000, maxBatchesInFlight: 8, runWhenIdle: true, onBatch: () => {} }, { maxBatchSize: 3, maxDelayMs: 0.5, runWhenIdle: false }]) {
      (await InferenceSession.create(net, { inputShape: MNIST, batching })).release();
    }
  });
});
