/**
 * `kiln serve model`: the model over HTTP (KServe v2 / Open Inference Protocol, src/serve/), with
 * micro-batching on by default, until SIGTERM or SIGINT, which drain it: not ready, no new
 * connections, requests in flight answered, then exit 0 (1 if the shutdown timeout cut some off).
 */
import { basename, extname } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { ErrorCode, KilnError } from '../errors.js';
import { type BatchingOptions, DEFAULT_BATCHES_IN_FLIGHT } from '../runtime/micro-batcher.js';
import { InferenceSession, type SessionOptions } from '../runtime/session.js';
import { ServeMetrics } from '../serve/metrics.js';
import { openOrtModel } from '../serve/ort-model.js';
import { datatypeOf } from '../serve/protocol.js';
import { createServer, SERVE_DEFAULTS, type ServableModel } from '../serve/server.js';
import { releaseFreeHeap } from '../system.js';
import { ortModel, readRunnableSource, runtimeModel, type RunnableSource } from './model-source.js';
import { Output } from './output.js';

export interface ServeCommandOptions {
  port: number;
  host: string;
  modelName?: string;
  runtime: string;
  /** false with --no-batching. */
  batching: boolean;
  maxBatch?: number;
  maxDelayMs?: number;
  batchesInFlight?: number;
  /** --run-when-idle: a request finding no batch in flight runs without waiting the delay. */
  runWhenIdle?: boolean;
  /** --spin / --no-spin: SessionOptions.allowSpinning (default SERVE_CLI_DEFAULTS.spin). */
  spin?: boolean;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  maxConnections: number;
  shutdownTimeoutMs: number;
  /** Status lines on stderr, and the ready line as one JSON object on stdout. */
  json?: boolean;
}

// spin false: see SessionOptions.allowSpinning. Polling for the next run took the CPU the event loop
// needed: int8 SeedCNN at 64 connections (wrk, this 2-core Xeon, 2 rounds) served 24.7-26.0K
// requests/s with the threads sleeping between runs against 22.1-22.8K polling, with the same p99.
//
// maxBatch 32: a queue runs as soon as it is full, so under load one batch runs while the event
// loop reads the next one's requests; a batch of every connection leaves the event loop idle while
// it runs. The load bench's SeedCNN int8 at 64 connections (wrk, 3 interleaved rounds): 24.2-24.8K
// requests/s with 32 against 18.5-20.3K with 64.
export const SERVE_CLI_DEFAULTS = { port: 8080, host: '127.0.0.1', maxBatch: 32, maxDelayMs: 0, shutdownTimeoutMs: 30_000, spin: false } as const;
export const SERVE_RUNTIMES = ['kiln', 'onnxruntime'] as const;

/** A name usable in /v2/models/<name>: the file's base name, other characters as '-'. */
export function defaultModelName(path: string): string {
  const name = basename(path, extname(path)).replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return name === '' ? 'model' : name;
}

async function openKilnModel(source: RunnableSource, threads: number | undefined, batching: BatchingOptions | undefined, spin: boolean): Promise<InferenceSession> {
  const options: SessionOptions = {
    ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
    allowSpinning: spin,
    ...(batching === undefined ? {} : { batching }),
  };
  if (source.kind === 'kiln') return InferenceSession.create(source.module, { ...options, inputShape: source.inputShape });
  return InferenceSession.create(runtimeModel(source), options);
}

/**
 * Whether the runtime's threads poll between runs: --spin / --no-spin, else Kiln's serving default
 * and ORT's own default (spinning: its SeedCNN server at 64 connections served 6.1K requests/s
 * without against 7.7-8.1K with, 2-core Xeon).
 */
function allowSpinning(opts: ServeCommandOptions): boolean {
  return opts.spin ?? (opts.runtime === 'kiln' ? SERVE_CLI_DEFAULTS.spin : true);
}

async function openModel(source: RunnableSource, opts: ServeCommandOptions, threads: number | undefined, batching: BatchingOptions | undefined): Promise<ServableModel & { release(): unknown }> {
  if (opts.runtime === 'kiln') return openKilnModel(source, threads, batching, allowSpinning(opts));
  return openOrtModel(ortModel(source), { intraOpNumThreads: threads ?? 0, allowSpinning: allowSpinning(opts) });
}

/**
 * Once the model has loaded: collects the garbage of loading it (the file's bytes, the graphs read
 * from them, the copies its plan was packed from) and gives the freed heap back to the OS, so that
 * the resident memory a container's limit sees is what serving needs (ResNet-50: 400 MB resident
 * when ready before, 244 MB with this). V8 would collect those objects only at its next full
 * collection, which a server's small per-request garbage may not bring for a long time, and glibc
 * keeps freed blocks of that size for reuse. V8's gc() is taken for these calls the way Jest's leak
 * detector takes it: exposed, fetched, hidden again. Arrays over lent memory (allocFloat32) free
 * it in finalizers that run on a later turn, so the collection runs a few turns apart (two freed
 * an imported ResNet-50 only some of the time, three every time).
 */
async function releaseLoadingMemory(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  for (let turn = 0; turn < 4; turn++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  releaseFreeHeap();
}

/**
 * Reads the model file, then starts building the model from it. The file's bytes (and the graph
 * read from them) live only in this frame and openModel's: held by serveCommand, which waits for
 * SIGTERM, they would stay for the server's lifetime (ResNet-50: 97 MB of bytes and as much again
 * of weights).
 */
async function startLoading(modelPath: string, opts: ServeCommandOptions, threads: number | undefined, batching: BatchingOptions | undefined): Promise<{ loading: Promise<ServableModel & { release(): unknown }> }> {
  const source = await readRunnableSource(modelPath);
  return { loading: openModel(source, opts, threads, batching) };
}

export async function serveCommand(modelPath: string, opts: ServeCommandOptions, threads?: number): Promise<void> {
  const out = new Output({ json: opts.json });
  if (!(SERVE_RUNTIMES as readonly string[]).includes(opts.runtime)) {
    throw new KilnError(ErrorCode.INVALID_ARG, `Expected --runtime to be one of ${SERVE_RUNTIMES.join(', ')} but received '${opts.runtime}'`);
  }
  const batchingAsked = opts.maxBatch !== undefined || opts.maxDelayMs !== undefined || opts.batchesInFlight !== undefined || opts.runWhenIdle === true;
  const batchingFlags = '--max-batch / --max-delay-ms / --batches-in-flight / --run-when-idle';
  if (!opts.batching && batchingAsked) throw new KilnError(ErrorCode.INVALID_ARG, `Expected ${batchingFlags} or --no-batching but received both`);
  if (opts.runtime !== 'kiln' && batchingAsked) throw new KilnError(ErrorCode.INVALID_ARG, `Expected ${batchingFlags} with --runtime kiln only: --runtime ${opts.runtime} does not micro-batch`);
  const metrics = new ServeMetrics();
  const batching: BatchingOptions | undefined =
    opts.batching && opts.runtime === 'kiln'
      ? {
          maxBatchSize: opts.maxBatch ?? SERVE_CLI_DEFAULTS.maxBatch,
          maxDelayMs: opts.maxDelayMs ?? SERVE_CLI_DEFAULTS.maxDelayMs,
          maxBatchesInFlight: opts.batchesInFlight ?? DEFAULT_BATCHES_IN_FLIGHT,
          runWhenIdle: opts.runWhenIdle === true,
          onBatch: metrics.onBatch,
        }
      : undefined;
  const modelName = opts.modelName ?? defaultModelName(modelPath);
  // The model file is read first: a missing or unreadable file fails before any port is taken.
  // An ONNX model with parameter inputs is served too: each request feeds their values.
  const { loading } = await startLoading(modelPath, opts, threads, batching);
  loading.catch(() => undefined);  // reported below, after the server is closed
  const server = createServer(loading, {
    modelName,
    maxBodyBytes: opts.maxBodyBytes,
    requestTimeoutMs: opts.requestTimeoutMs,
    maxConnections: opts.maxConnections,
    metrics,
  });
  const address = await server.listen(opts.port, opts.host);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  out.line(`kiln serve: listening on ${url} (loading ${modelPath})`);
  // Signals are taken from here on: a SIGTERM while the model loads stops the server too.
  const stop = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  let model: ServableModel & { release(): unknown };
  try {
    const first = await Promise.race([loading, stop]);
    if (typeof first === 'string') {
      out.line(`kiln serve: ${first} while loading: stopped`);
      await server.close({ timeoutMs: 1000 });
      void loading.then((m) => m.release(), () => undefined);
      return;
    }
    model = first;
  } catch (err) {
    await server.close({ timeoutMs: 1000 });
    throw err;
  }
  await releaseLoadingMemory();
  const inputs = model.inputNames.map((n, i) => `"${n}" ${datatypeOf(model.inputTypes[i]!)} [${model.inputShapes[i]!.join(', ')}]`).join(', ');
  const batchLine = batching
    ? `batching up to ${batching.maxBatchSize} images, ${batching.maxDelayMs} ms delay${batching.runWhenIdle ? ' (none when idle)' : ''}, ${batching.maxBatchesInFlight} in flight`
    : 'no batching';
  const spinning = allowSpinning(opts);
  const spinLine = spinning ? 'kernel threads poll between runs' : 'kernel threads sleep between runs';
  out.line(`kiln serve: ready: model "${modelName}" (${modelPath}, ${opts.runtime}), input ${inputs}; ${batchLine}; ${spinLine}; POST ${url}/v2/models/${modelName}/infer`);
  if (out.json) {
    const tensors = model.inputNames.map((name, i) => ({ name, datatype: datatypeOf(model.inputTypes[i]!), shape: model.inputShapes[i] }));
    const settings = batching
      ? { maxBatchSize: batching.maxBatchSize, maxDelayMs: batching.maxDelayMs, maxBatchesInFlight: batching.maxBatchesInFlight, runWhenIdle: batching.runWhenIdle === true }
      : null;
    process.stdout.write(`${JSON.stringify({ url, host: address.address, port: address.port, model: modelPath, modelName, runtime: opts.runtime, inputs: tensors, batching: settings, allowSpinning: spinning })}\n`);
  }

  const signal = await stop;
  out.line(`kiln serve: ${signal}: draining (${server.metrics.inFlightRequests} requests in flight, at most ${opts.shutdownTimeoutMs} ms)`);
  const { forced } = await server.close({ timeoutMs: opts.shutdownTimeoutMs });
  // Cut-off runs may still be in flight: the session refuses release() then, and the process ends anyway.
  if (!forced) await model.release();
  if (forced) {
    out.warn(`shutdown timeout (${opts.shutdownTimeoutMs} ms): connections still open were closed`);
    process.exitCode = 1;
    return;
  }
  out.line('kiln serve: stopped');
}

export { SERVE_DEFAULTS };
