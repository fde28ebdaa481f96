/**
 * Micro-batching for `InferenceSession` (`SessionOptions.batching`), in the manner of Triton's
 * dynamic batcher and TF Serving's batching: concurrent `run()` calls whose images have the same
 * per-image shapes wait in a queue, which runs as ONE native run of the concatenated batch; the
 * outputs are split back by rows, each caller getting its own tensors.
 *
 * When a queue runs: a queue is due when it holds `maxBatchSize` images, or when its first request
 * has waited `maxDelayMs` (0, or with `runWhenIdle` a queue opened while no batch is in flight or
 * due: at the end of the event-loop turn it opened in); the oldest due queue
 * runs as soon as fewer than `maxBatchesInFlight` merged runs are in flight. While they run, the
 * requests that arrive join the queue behind them, which runs when one settles: under load,
 * batches fill up by themselves, and a request waits at most for a batch in flight, `maxDelayMs`,
 * and its own batch's run.
 *
 * Why merging is exact: the session only queues requests for a batch-major plan (plan.ts), where
 * the batch is a run-time parameter, the outermost dimension of every value, and no step mixes
 * images; row i of every output depends on image i alone. Everything else runs alone (see
 * `InferenceSession.run`). The plan is one per per-image shape, so merged batches of any size
 * 1..maxBatchSize reuse it (the native arena pool only grows to the largest batch seen).
 *
 * Each request owns what it gets and what it gives:
 * - its feeds were validated before it joined (a bad request rejects alone, and never joins);
 * - its input is copied into the queue's own buffer when it joins, so the caller may reuse,
 *   detach or shrink its arrays as soon as `run()` returns, and the native thread reads only
 *   memory the batcher owns;
 * - its outputs are copies of its rows (no caller can detach another's result);
 * - when the merged run fails, every member runs again alone and gets its own result or error.
 */
import { performance } from 'node:perf_hooks';

import { allocFloat32 } from '../memory.js';
import { Tensor } from '../tensor.js';
import { boolean, integer, number, onlyKeys, options as checkOptions, typeError } from '../validate.js';

/** What each merged native run reports to `BatchingOptions.onBatch`. */
export interface BatchReport {
  /** Images in the native run (the sum of its requests' batches; at most maxBatchSize). */
  size: number;
  /** `run()` calls merged into it. */
  requests: number;
  /**
   * Requests waiting in the session's queues when this batch settled (`queuedRuns` then): the
   * backlog that built up while it ran.
   */
  queued: number;
  /** How long its oldest request waited in the queue, in milliseconds. */
  waitMs: number;
  /**
   * Milliseconds from leaving the queue to every member's outputs being split back: the native
   * run, and the plan build on the first run of a new input size.
   */
  runMs: number;
}

/** `SessionOptions.batching`: see {@link MicroBatcher}. */
export interface BatchingOptions {
  /** Most images merged into one native run, an integer in [1, 65536]. */
  maxBatchSize: number;
  /**
   * Longest a batch's first request waits for others to join it, in milliseconds, in [0, 60000]
   * (fractions allowed; timers have ~1 ms resolution). 0: the requests made in the same turn of the
   * event loop run together, and none waits on purpose. Whatever the delay, a session has at most
   * `maxBatchesInFlight` merged batches in flight: requests that arrive meanwhile queue and run as
   * the next batch when one settles (at once if their delay has passed by then).
   */
  maxDelayMs: number;
  /**
   * Merged runs in flight at once, an integer in [1, 8]; default 2. Two keep the cores busy while
   * the event loop hands one batch's results out and reads the next one's requests: the most
   * requests/s, where that event-loop work is large against a batch's run (HTTP-bound small
   * models). One runs each batch alone on every thread, so a request waits for at most the batch
   * running and its own: the shorter tail where runs take tens of milliseconds or more (int8
   * ResNet-50 at 224x224 behind `kiln serve`, 64 connections: p99 about 2 batch runs with one,
   * nearly 3 with two, at the same requests/s).
   */
  maxBatchesInFlight?: number;
  /**
   * Whether a request that finds the session idle (no batch in flight, none due) runs at the end of
   * its event-loop turn instead of waiting `maxDelayMs`; default false. The delay is there to let
   * batches fill while the cores are busy anyway; on an idle session it only delays a lone request.
   * With it, a queue opened while some batch is in flight still waits `maxDelayMs` (under load some
   * batch nearly always is, so batches fill as before), and one opened on an idle session takes
   * what arrives in that turn and runs (int8 ResNet-50, `--threads 1 --batches-in-flight 2`, delay
   * 80 ms: see docs/serving.md).
   */
  runWhenIdle?: boolean;
  /**
   * Called after each merged run settles (metrics: batch size histogram, queue depth). An exception
   * it throws is reported with `process.emitWarning` and otherwise ignored: the runs are done.
   */
  onBatch?: (batch: BatchReport) => void;
}

/** The most images one merged run may hold (a bound on the memory a queue can take). */
export const MAX_BATCH_SIZE = 65_536;
/** The longest a request may be asked to wait. */
export const MAX_DELAY_MS = 60_000;
/**
 * Merged runs a session has in flight at once unless `maxBatchesInFlight` says otherwise. Two: a
 * batch's outputs wait for the event loop to take them while the next batch already runs, so the
 * cores do not idle between batches (int8 SeedCNN behind `kiln serve` at 64 connections, an
 * HTTP-bound server: 15.9K requests/s with two, 11.0K with one). More buy nothing: each run
 * already uses all of the session's threads, so extra runs only share the cores, and under load
 * every request ran in a small batch of its own turn (int8 MobileNetV2 at 64 connections, batches
 * of 32: unbounded, 9.5 images per batch, 373 requests/s, p99 779 ms; two, 18.7 images, 545
 * requests/s, p99 167 ms).
 */
export const DEFAULT_BATCHES_IN_FLIGHT = 2;
/** The most `maxBatchesInFlight` may be. */
export const MAX_BATCHES_IN_FLIGHT = 8;
/** Per-image shapes whose settled batches' input buffers are kept for reuse. */
const SPARE_SHAPES = 4;

/** Validated batching options (RangeError/TypeError ERR_KILN_INVALID_ARG naming the option). */
export function checkBatching(value: unknown): BatchingOptions {
  const name = 'options.batching';
  if (value === undefined) throw typeError(name, 'an object { maxBatchSize, maxDelayMs, maxBatchesInFlight?, onBatch? }', value);
  const opts = checkOptions<BatchingOptions>(name, value);
  onlyKeys(name, opts, ['maxBatchSize', 'maxDelayMs', 'maxBatchesInFlight', 'runWhenIdle', 'onBatch']);
  const maxBatchSize = integer(`${name}.maxBatchSize`, opts.maxBatchSize, 1, MAX_BATCH_SIZE);
  const maxDelayMs = number(`${name}.maxDelayMs`, opts.maxDelayMs, 0, MAX_DELAY_MS);
  const maxBatchesInFlight = opts.maxBatchesInFlight === undefined
    ? DEFAULT_BATCHES_IN_FLIGHT
    : integer(`${name}.maxBatchesInFlight`, opts.maxBatchesInFlight, 1, MAX_BATCHES_IN_FLIGHT);
  if (opts.onBatch !== undefined && typeof opts.onBatch !== 'function') throw typeError(`${name}.onBatch`, 'a function', opts.onBatch);
  const runWhenIdle = opts.runWhenIdle === undefined ? false : boolean(`${name}.runWhenIdle`, opts.runWhenIdle);
  return { maxBatchSize, maxDelayMs, maxBatchesInFlight, runWhenIdle, ...(opts.onBatch === undefined ? {} : { onBatch: opts.onBatch }) };
}

/** Float32 plan inputs: one array per plan input, per-image shapes, the common batch. */
export interface BatchFeed {
  arrays: Float32Array[];
  shapes: number[][];
  batch: number;
}

export type Float32Outputs = Record<string, Tensor<'float32'>>;

/** What the batcher needs of its session. */
export interface BatchTarget<Out> {
  /**
   * Whether requests of this feed's per-image shapes may share a run (builds their plan first if
   * that is what decides it; rejects with the build's error, which every such request shares).
   */
  mergeable(feed: BatchFeed): boolean | Promise<boolean>;
  /**
   * One native run of the feed: float32 plan outputs, batch first. `offThread`: on a runner thread
   * however cheap the run (see MicroBatcher.runNext), otherwise as the run's cost decides.
   */
  runPlan(feed: BatchFeed, offThread: boolean): Promise<Float32Outputs>;
  /** One request run on its own, with its own result or error. */
  runAlone(feed: BatchFeed): Promise<Out>;
  /** Plan outputs as the caller receives them (declared output types). */
  finish(outputs: Float32Outputs): Out;
}

interface Member<Out> {
  /** First image of the request in the queue's buffers. */
  offset: number;
  batch: number;
  resolve: (out: Out) => void;
  reject: (err: unknown) => void;
}

/** Requests of one per-image shape waiting to be merged. */
interface Queue<Out> {
  key: string;
  shapes: number[][];
  /** Elements per image of each input. */
  perImage: number[];
  /** Owned copies of the members' inputs, back to back; `capacity` images each. */
  buffers: Float32Array[];
  capacity: number;
  images: number;
  members: Member<Out>[];
  since: number;
  timer: { cancel(): void };
  /** Its delay has passed or it is full: it runs once fewer than maxBatchesInFlight batches are in flight. */
  due: boolean;
  /** It became due while a batch was in flight: it waited behind a busy session. */
  queuedBehind: boolean;
}

export class MicroBatcher<Out> {
  /** The queue each per-image shape is filling (due or not), by key. */
  private readonly open = new Map<string, Queue<Out>>();
  /** Due queues in the order they became due; a due queue keeps taking requests until it runs or fills. */
  private readonly due: Queue<Out>[] = [];
  /** Buffers of settled batches, by key, for the next queues of the same shapes. */
  private readonly spare = new Map<string, { buffers: Float32Array[]; capacity: number }[]>();
  private waiting = 0;
  /**
   * Requests that left their queue and are not settled yet: counted down just before each is
   * resolved or rejected, so a caller that awaited all its runs may release the session at once.
   */
  private running = 0;
  /** Merged runs out of their queue and not settled yet. */
  private inFlight = 0;
  private readonly inFlightLimit: number;

  constructor(
    private readonly options: BatchingOptions,
    private readonly target: BatchTarget<Out>,
  ) {
    this.inFlightLimit = options.maxBatchesInFlight ?? DEFAULT_BATCHES_IN_FLIGHT;
  }

  /** Requests waiting in a queue. */
  get queuedRuns(): number {
    return this.waiting;
  }

  /** Requests queued, or out of their queue and not settled yet: the session may not be released. */
  get busy(): boolean {
    return this.waiting > 0 || this.running > 0;
  }

  /** Whether a request of `batch` images may wait in a queue (larger ones run alone). */
  accepts(batch: number): boolean {
    return batch <= this.options.maxBatchSize;
  }

  /**
   * Queues a validated request; its arrays are copied before this returns. `key` names its
   * per-image shapes (requests merge only with the same key).
   */
  submit(key: string, feed: BatchFeed): Promise<Out> {
    let queue = this.open.get(key);
    if (queue !== undefined && queue.images + feed.batch > this.options.maxBatchSize) {
      this.close(queue);
      queue = undefined;
    }
    queue ??= this.openQueue(key, feed);
    const offset = queue.images;
    this.reserve(queue, offset + feed.batch);
    feed.arrays.forEach((a, i) => queue.buffers[i]!.set(a.subarray(0, feed.batch * queue.perImage[i]!), offset * queue.perImage[i]!));
    queue.images += feed.batch;
    this.waiting++;
    const result = new Promise<Out>((resolve, reject) => {
      const settled = (): void => {
        this.running--;
      };
      queue.members.push({
        offset,
        batch: feed.batch,
        resolve: (out) => {
          settled();
          resolve(out);
        },
        reject: (err) => {
          settled();
          reject(err);
        },
      });
    });
    if (queue.images === this.options.maxBatchSize) this.close(queue);
    return result;
  }

  private openQueue(key: string, feed: BatchFeed): Queue<Out> {
    const perImage = feed.shapes.map((s) => s.reduce((a, b) => a * b, 1));
    // A settled batch's buffers when there are some (fresh ones cost more than the run of a small
    // model: int8 MobileNetV2 at 224x224, one image through the batcher took 3.8-4.6 ms against a
    // plain run's 1.4 ms while every queue allocated 8 images' worth). Otherwise start small and
    // double: a large maxBatchSize of large images must not be allocated up front.
    const spare = this.spare.get(key)?.pop();
    const capacity = spare?.capacity ?? Math.min(this.options.maxBatchSize, Math.max(feed.batch, 8));
    const queue: Queue<Out> = {
      key, shapes: feed.shapes.map((s) => s.slice()), perImage, capacity, images: 0, members: [], since: performance.now(),
      buffers: spare?.buffers ?? perImage.map((n) => allocFloat32(n * capacity)),
      timer: { cancel: () => {} },
      due: false,
      queuedBehind: false,
    };
    const due = (): void => this.markDue(queue);
    // Delay 0, or an idle session with runWhenIdle: the queue takes what arrives in this turn of
    // the event loop, then is due.
    const idle = this.options.runWhenIdle === true && this.inFlight === 0 && this.due.length === 0;
    if (this.options.maxDelayMs === 0 || idle) {
      const t = setImmediate(due);
      queue.timer = { cancel: () => clearImmediate(t) };
    } else {
      const t = setTimeout(due, this.options.maxDelayMs);
      queue.timer = { cancel: () => clearTimeout(t) };
    }
    this.open.set(key, queue);
    return queue;
  }

  /**
   * A settled batch's buffers, kept for the next queue of its shapes: nothing reads them once its
   * run (and any re-run of its members alone) has settled, and no caller ever sees them. At most
   * one set per batch that can be in flight, plus the one filling, for the SPARE_SHAPES per-image
   * shapes seen last (a model fed images of many sizes keeps no buffers for all of them).
   */
  private keepBuffers(queue: Queue<Out>): void {
    const sets = this.spare.get(queue.key) ?? [];
    this.spare.delete(queue.key);  // re-inserted last: the Map's order is the order of use
    this.spare.set(queue.key, sets);
    if (sets.length < this.inFlightLimit + 1) sets.push({ buffers: queue.buffers, capacity: queue.capacity });
    if (this.spare.size > SPARE_SHAPES) this.spare.delete(this.spare.keys().next().value!);
  }

  private reserve(queue: Queue<Out>, images: number): void {
    if (images <= queue.capacity) return;
    let capacity = queue.capacity;
    while (capacity < images) capacity = Math.min(this.options.maxBatchSize, capacity * 2);
    queue.buffers = queue.buffers.map((old, i) => {
      const grown = allocFloat32(queue.perImage[i]! * capacity);
      grown.set(old.subarray(0, queue.images * queue.perImage[i]!));
      return grown;
    });
    queue.capacity = capacity;
  }

  /** The queue is full (or the next request would overfill it): it takes no more requests, and is due. */
  private close(queue: Queue<Out>): void {
    this.stopFilling(queue);
    this.markDue(queue);
  }

  /** New requests of the queue's shapes go to a new queue from now on, and its timer is off. */
  private stopFilling(queue: Queue<Out>): void {
    if (this.open.get(queue.key) === queue) this.open.delete(queue.key);
    queue.timer.cancel();
  }

  private markDue(queue: Queue<Out>): void {
    if (!queue.due) {
      queue.due = true;
      queue.queuedBehind = this.inFlight > 0;
      this.due.push(queue);
    }
    this.runNext();
  }

  /** Runs the oldest due queue when fewer than maxBatchesInFlight batches are in flight. */
  private runNext(): void {
    if (this.inFlight >= this.inFlightLimit) return;
    const queue = this.due.shift();
    if (queue === undefined) return;
    this.stopFilling(queue);
    // The run leaves the event loop, however cheap, when it merges several requests and the event
    // loop has other work meanwhile: the rest of a turn that filled the batch (a newer queue of the
    // same shapes is filling), other due queues, or the requests that queued behind a busy session
    // (int8 SeedCNN behind `kiln serve` at 64 connections: 22-24K requests/s against 18K when its
    // batches of 32 ran inline, as their cost allowed). Otherwise the cost decides, as for a run of
    // its own: a small batch of every request there is (8 connections) runs inline, sparing the
    // thread hop.
    const loaded = queue.images === this.options.maxBatchSize || this.open.has(queue.key) || queue.queuedBehind || this.due.length > 0;
    const offThread = queue.members.length > 1 && loaded;
    this.waiting -= queue.members.length;
    this.running += queue.members.length;
    this.inFlight++;
    void this.runBatch(queue, offThread).finally(() => {
      this.keepBuffers(queue);
      this.inFlight--;
      this.runNext();
    });
  }

  /** The feed of some members' rows, over the queue's buffers (no copy). */
  private feedOf(queue: Queue<Out>, offset: number, batch: number): BatchFeed {
    return {
      arrays: queue.buffers.map((b, i) => b.subarray(offset * queue.perImage[i]!, (offset + batch) * queue.perImage[i]!)),
      shapes: queue.shapes,
      batch,
    };
  }

  private async runBatch(queue: Queue<Out>, offThread: boolean): Promise<void> {
    const started = performance.now();
    const { members } = queue;
    const first = members[0]!;
    let merged: boolean;
    try {
      merged = await this.target.mergeable(this.feedOf(queue, first.offset, first.batch));
    } catch (err) {
      // The plan for these per-image shapes cannot be built: the same error for every member.
      for (const m of members) m.reject(err);
      return;
    }
    if (!merged) {
      await this.runEach(queue);
    } else {
      let outputs: Float32Outputs | undefined;
      try {
        outputs = await this.target.runPlan(this.feedOf(queue, 0, queue.images), offThread);
      } catch {
        // Whatever failed the merged run, each member learns its own fate.
        await this.runEach(queue);
      }
      if (outputs !== undefined) this.split(outputs, queue);
    }
    this.report({ size: queue.images, requests: members.length, queued: this.waiting, waitMs: started - queue.since, runMs: performance.now() - started });
  }

  /** Every member run alone (its own plan call, result and error). */
  private async runEach(queue: Queue<Out>): Promise<void> {
    await Promise.all(queue.members.map((m) => Promise.resolve().then(() => this.target.runAlone(this.feedOf(queue, m.offset, m.batch))).then(m.resolve, m.reject)));
  }

  /** Each member's rows of every output, copied into tensors of its own. */
  private split(outputs: Float32Outputs, queue: Queue<Out>): void {
    const entries = Object.entries(outputs);
    for (const m of queue.members) {
      const own: Float32Outputs = {};
      for (const [name, t] of entries) {
        const rows = t.data.length / queue.images;
        const data = allocFloat32(m.batch * rows);
        data.set(t.data.subarray(m.offset * rows, (m.offset + m.batch) * rows));
        own[name] = new Tensor('float32', data, [m.batch, ...t.dims.slice(1)]);
      }
      try {
        m.resolve(this.target.finish(own));
      } catch (err) {
        m.reject(err);
      }
    }
  }

  private report(batch: BatchReport): void {
    const onBatch = this.options.onBatch;
    if (onBatch === undefined) return;
    try {
      onBatch(batch);
    } catch (err) {
      process.emitWarning(err instanceof Error ? err : String(err), { code: 'KILN_ON_BATCH' });
    }
  }
}
