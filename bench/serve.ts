/**
 * Serving under load (issue 16): `kiln serve` on the int8 SeedCNN with micro-batching and without,
 * against the same server code in front of onnxruntime-node on the fp32 and the int8 (QDQ) export
 * (`kiln serve --runtime onnxruntime`), each server a child process on loopback, loaded by wrk
 * (autocannon where wrk is not installed) at 1, 8 and 64 connections for `seconds` each (default
 * 20; `--serve-seconds` or env KILN_SERVE_SECONDS). Every request is one 28x28 image on the binary
 * tensor endpoint. Reports requests/s, p50/p99 latency, ratios against the ORT fp32 server of the
 * same run, the mean micro-batch (size and run time, from the server's /metrics) and the issue's
 * targets at 64.
 *
 * SeedCNN also gets a row whose batches run on one thread each (`--threads 1`).
 *
 * Given the torchvision exports (`--real-models <dir>`, bench/models/export_torchvision.py), the
 * same servers also serve ResNet-50 and MobileNetV2 (224x224, one image per request): models whose
 * run, not the HTTP work, decides the throughput, where SeedCNN's 20 us per image leaves the event
 * loop's request parsing as the bound. Those two also get a row with one batch per core, each on
 * one thread (`--threads 1 --batches-in-flight <cores>`), and a delay of a fifth of a full batch's
 * one-thread run (timed here before the servers start) that applies only while a batch runs
 * (`--run-when-idle`): the configuration for the shortest tail under load that still answers a
 * lone request at once.
 *
 * Each section ends with the HTTP floor (bench/http-floor.ts): a node:http server that runs no
 * model and replays a reply recorded from Kiln, under the same load. Its p99 at 64 connections is
 * what the issue's bound is set against: for SeedCNN the bound (a couple of batch runs of a
 * millisecond) lies below even the floor's.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Graph } from '../src/graph/ir.js';
import { seedCNN } from '../src/nn/models.js';
import { benchmarkInput, exportModel } from '../src/onnx/index.js';
import { quantize } from '../src/quant/ptq.js';
import { save } from '../src/runtime/model-io.js';
import { MODEL_BUCKETS } from '../src/serve/metrics.js';
import { InferenceSession } from '../src/runtime/session.js';
import type { Tensor } from '../src/tensor.js';
import { torchvisionFiles, torchvisionModel } from './real-models-speed.js';
import type { Report } from './report.js';

const CONCURRENCY = [1, 8, 64];
/** The concurrency the issue's targets are judged at. */
const TARGET_CONNECTIONS = 64;
/** Seconds of load at a row's own connection count before it is measured. */
const WARM_UP_S = 4;
/**
 * `kiln serve`'s default: half the target concurrency, so one batch runs while the next one's
 * requests are read (a batch of all 64 connections leaves the event loop idle while it runs).
 */
const MAX_BATCH = 32;
/** Micro-batching delays measured: 0 (merge what arrives together, `kiln serve`'s default) and 2 ms. */
const DELAYS_MS = [0, 2];
/** A batch as large as the whole target concurrency, to show what that costs (delay 0). */
const WHOLE_BATCH = TARGET_CONNECTIONS;
/** The torchvision architectures served when the exports are given: the two most deployed CNN families. */
const REAL_MODELS = ['resnet50', 'mobilenet_v2'];
/**
 * The delay of the one-thread-per-batch row, as a fraction of a full batch's run on one thread: long
 * enough for a settled batch's connections to send their next requests (602 KB each, read by an
 * event loop that shares the cores with the other batch's run), so that the next batch starts
 * full instead of with the first few. With no delay, int8 MobileNetV2 ran batches of 19 images on
 * average at 64 connections, and its p99 passed 2 batch runs; with about a fifth (15-20 ms), 28.
 */
const DELAY_FRACTION = 1 / 5;
/** The row of the server that runs no model (bench/http-floor.ts). */
const FLOOR_NAME = 'HTTP floor: node:http, no model';
/** The floor server's script, compiled beside this file. */
const FLOOR_ENTRY = fileURLToPath(new URL('./http-floor.js', import.meta.url));
/** wrk's per-request timeout: a 224x224 model's server at 64 connections answers in seconds, not wrk's default 2 s. */
const WRK_TIMEOUT_S = 30;

/** The parts of autocannon's result this bench reads (its latency histogram keeps whole ms: unused). */
interface AutocannonResult {
  requests: { average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
interface AutocannonInstance {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, ms: number) => void): void;
}
type Autocannon = (options: Record<string, unknown>, done: (err: Error | null, result: AutocannonResult) => void) => AutocannonInstance;

/** autocannon ships no types; it is CommonJS, taken through require. */
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

interface Server {
  child: ChildProcess;
  base: string;
  output: () => string;
}

/**
 * The guest's idle polling, which decides what 1 connection measures: where an idle vCPU halts at
 * once (halt-polling off), the client and server pay a vCPU wake-up per turn, and a runtime that
 * spins its threads between runs (ORT) pays none (docs/serving.md, "How fast").
 */
function idleNote(): string {
  const read = (path: string): string | undefined => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const driver = read('/sys/devices/system/cpu/cpuidle/current_driver') ?? 'unknown';
  const pollNs = read('/sys/module/haltpoll/parameters/guest_halt_poll_ns');
  const polling = pollNs === undefined ? '' : `, guest_halt_poll_ns=${pollNs}${pollNs === '0' ? ' (an idle vCPU halts at once: each wake-up costs tens of microseconds)' : ''}`;
  return `idle policy of this machine: cpuidle driver ${driver}${polling}. At 1 connection client and server take turns, so wake-ups weigh on every request; ORT's thread pool spins between runs and keeps a vCPU awake, Kiln runs a single SeedCNN image inline and sleeps: see docs/serving.md "How fast" for the in-process run times and a run with the vCPUs kept awake`;
}

/**
 * `kiln serve <args>` on a free loopback port, once it says it is ready; with `entry`, that script
 * instead (the HTTP floor, which prints the same lines and picks its own port).
 */
async function startServer(root: string, args: string[], entry?: string): Promise<Server> {
  const argv = entry === undefined ? [join(root, 'bin', 'kiln.js'), ...args, '--port', '0'] : [entry, ...args];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server not ready in 120 s: ${text}`)), 120_000);
    child.stdout!.on('data', () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
      if (m && text.includes('ready: model')) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}): ${text.trim()}`));
    });
  });
  return { child, base: `http://127.0.0.1:${port}`, output: () => text };
}

async function stopServer(s: Server): Promise<void> {
  if (s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

/** The headers of a binary-tensor request whose JSON header is `headerLength` bytes. */
function requestHeaders(headerLength: number): Record<string, string> {
  return { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) };
}

/**
 * One request to a Kiln server, its reply written to `file` for the HTTP floor to replay; resolves
 * with the reply's inference-header-content-length.
 */
async function recordReply(url: string, model: ServedModel, file: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: requestHeaders(model.headerLength),
    body: model.body,
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const headerLength = res.headers.get('inference-header-content-length');
  if (res.status !== 200 || headerLength === null) throw new Error(`recording the HTTP floor's reply: status ${res.status}: ${bytes.toString().slice(0, 200)}`);
  await writeFile(file, bytes);
  return headerLength;
}

/** Sum and count of a histogram in Prometheus text (the series whose labels contain `label`, if given). */
function histogram(text: string, name: string, label = ''): { sum: number; count: number } {
  const value = (suffix: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}_${suffix}`) && l.includes(label) && /^\S+(\{[^}]*\})? \S+$/.test(l));
    return Number(line?.split(' ').pop() ?? NaN);
  };
  return { sum: value('sum'), count: value('count') };
}

/** Cumulative bucket counts of a histogram in Prometheus text, by upper bound (seconds). */
function buckets(text: string, name: string): Map<number, number> {
  const counts = new Map<number, number>();
  const bucketLine = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`);
  for (const line of text.split('\n')) {
    const m = bucketLine.exec(line);
    if (m) counts.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  return counts;
}

/**
 * The q-quantile of the observations made between two scrapes of a histogram, as the upper bound
 * of the bucket it falls in (so never an underestimate), in milliseconds.
 */
function bucketQuantile(before: string, after: string, name: string, q: number): number {
  const b0 = buckets(before, name);
  const b1 = buckets(after, name);
  const bounds = [...b1.keys()].sort((a, b) => a - b);
  const total = (b1.get(Infinity) ?? 0) - (b0.get(Infinity) ?? 0);
  if (total <= 0) return NaN;
  for (const le of bounds) {
    if ((b1.get(le)! - (b0.get(le) ?? 0)) >= q * total) return le * 1000;
  }
  return Infinity;
}

/** One request: a binary-extension body with one image, binary output asked for. */
function requestBody(input: string, image: Float32Array, shape: number[]): { body: Buffer; headerLength: number } {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: input, shape, datatype: 'FP32', parameters: { binary_data_size: image.byteLength } }], parameters: { binary_data_output: true } }));
  return { body: Buffer.concat([header, Buffer.from(image.buffer, image.byteOffset, image.byteLength)]), headerLength: header.length };
}

/** One load run's figures: requests/s, client-side p50/p99 in ms, failed requests. */
interface LoadResult { rps: number; p50: number; p99: number; errors: number }

interface LoadGenerator {
  name: string;
  /** How p50/p99 are measured. */
  latency: string;
  /** Why this generator (a note under the table). */
  why: string;
  load(url: string, connections: number, seconds: number): Promise<LoadResult>;
}

/**
 * wrk when it is installed (`apt-get install wrk`; `KILN_LOAD_GENERATOR=autocannon` forces the
 * other), autocannon otherwise. The generator shares the server's two cores: autocannon's Node
 * thread keeps about one of them busy at 20K requests/s, wrk a fraction of it, so with wrk the
 * figures say more about the servers and less about the client. It is not kinder to Kiln: the
 * ORT servers, which leave more of the CPU to the client, gain more from it.
 */
async function loadGenerator(dir: string, body: Buffer, headerLength: number): Promise<LoadGenerator> {
  const headers = requestHeaders(headerLength);
  const forced = process.env.KILN_LOAD_GENERATOR;
  if (forced !== undefined && forced !== 'wrk' && forced !== 'autocannon') throw new Error(`KILN_LOAD_GENERATOR: expected 'wrk' or 'autocannon', got '${forced}'`);
  const hasWrk = forced !== 'autocannon' && spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
  if (forced === 'wrk' && !hasWrk) throw new Error('KILN_LOAD_GENERATOR=wrk, but no wrk on the PATH (apt-get install wrk)');
  if (hasWrk) {
    const bodyFile = join(dir, 'request.bin');
    const script = join(dir, 'request.lua');
    await writeFile(bodyFile, body);
    // The summary as one JSON line (latency in microseconds), after wrk's own text.
    await writeFile(script, [
      `local f = assert(io.open(${JSON.stringify(bodyFile)}, "rb"))`,
      'wrk.method = "POST"',
      'wrk.body = f:read("*all")',
      'f:close()',
      ...Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`),
      'function done(summary, latency, requests)',
      '  local e = summary.errors',
      '  io.write(string.format(\'KILN {"requests":%d,"us":%d,"errors":%d,"p50":%f,"p99":%f}\\n\',',
      '    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50), latency:percentile(99)))',
      'end',
    ].join('\n'));
    return {
      name: 'wrk (one thread)',
      latency: 'wrk\'s latency histogram (microseconds)',
      why: 'wrk, a C client, takes a fraction of the CPU autocannon\'s Node thread does for the same load; KILN_LOAD_GENERATOR=autocannon measures with autocannon',
      load: (url, connections, seconds) => new Promise((resolve, reject) => {
        const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', `${WRK_TIMEOUT_S}s`, '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.once('error', reject);
        child.once('exit', (code) => {
          const line = out.split('\n').find((l) => l.startsWith('KILN '));
          if (code !== 0 || line === undefined) return reject(new Error(`wrk exited ${code}: ${out.trim().slice(-400)}`));
          const r = JSON.parse(line.slice(5)) as { requests: number; us: number; errors: number; p50: number; p99: number };
          resolve({ rps: r.requests / (r.us / 1e6), p50: r.p50 / 1000, p99: r.p99 / 1000, errors: r.errors });
        });
      }),
    };
  }
  return {
    name: 'autocannon (one Node thread)',
    latency: 'over every successful response\'s time as autocannon measured it (its own histogram keeps whole milliseconds)',
    why: forced === 'autocannon' ? 'autocannon by KILN_LOAD_GENERATOR' : 'no wrk on the PATH (apt-get install wrk measures with a lighter client)',
    load: (url, connections, seconds) => new Promise((resolve, reject) => {
      const times: number[] = [];
      const instance = autocannon({ url, method: 'POST', headers, body, connections, duration: seconds, timeout: WRK_TIMEOUT_S }, (err, result) => {
        if (err) return reject(err);
        times.sort((a, b) => a - b);
        const at = (q: number): number => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? NaN;
        resolve({ rps: result.requests.average, p50: at(0.5), p99: at(0.99), errors: result.errors + result.timeouts + result.non2xx });
      });
      instance.on('response', (_client, status, _bytes, ms) => {
        if (status === 200) times.push(ms);
      });
    }),
  };
}

export interface ServeBenchOptions {
  root: string;
  /** Seconds per configuration. */
  seconds: number;
  /** Folder of bench/models/export_torchvision.py's exports: also serve REAL_MODELS from it. */
  realModels?: string;
}

/** One model the servers are measured on: its files, one request, and how the section reads. */
interface ServedModel {
  /** Name in the URLs. */
  name: string;
  title: string;
  int8Kiln: string;
  fp32Onnx: string;
  int8Onnx: string;
  body: Buffer;
  headerLength: number;
  /**
   * The Kiln batching configurations measured: max batch, delay, batches in flight (the default when
   * absent) and the server's `--threads` (every core when absent).
   */
  /** Each micro-batching server: `idle` adds --run-when-idle (the delay only while a batch runs). */
  batching: { maxBatch: number; delayMs: number; inFlight?: number; threads?: number; idle?: boolean; spin?: boolean }[];
  image: string;
  modelNote: string;
}

/** The int8 SeedCNN (MNIST): 20 us per image, so the HTTP work is what the servers are measured on. */
async function seedCnnServed(dir: string): Promise<ServedModel> {
  const net = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 }).eval();
  const { graph: int8 } = await quantize(net, benchmarkInput(64, [1, 28, 28], 3), { method: 'minmax', reportImages: 0 });
  const int8Kiln = join(dir, 'seedcnn-int8.kiln');
  await save(int8, int8Kiln);
  const fp32Onnx = join(dir, 'seedcnn-fp32.onnx');
  const int8Onnx = join(dir, 'seedcnn-int8-qdq.onnx');
  await writeFile(fp32Onnx, exportModel(net, { inputShape: [1, 28, 28] }));
  await writeFile(int8Onnx, exportModel(int8));
  return {
    name: 'seedcnn',
    title: 'Serving under load: kiln serve (int8 SeedCNN MNIST) with and without micro-batching vs the same server on onnxruntime-node fp32 and int8',
    int8Kiln, fp32Onnx, int8Onnx,
    ...requestBody('input', benchmarkInput(1, [1, 28, 28], 11).data as Float32Array, [1, 1, 28, 28]),
    // And batches on one thread each: a batch of SeedCNN takes a fraction of a millisecond, so
    // splitting it over the cores gains little and takes a core from the event loop, which is
    // the bound here.
    batching: [
      ...DELAYS_MS.map((delayMs) => ({ maxBatch: MAX_BATCH, delayMs })),
      { maxBatch: WHOLE_BATCH, delayMs: 0 },
      { maxBatch: MAX_BATCH, delayMs: 0, threads: 1 },
      // The threads polling between runs (SessionOptions.allowSpinning, off in kiln serve): what
      // that costs a server whose event loop shares the cores.
      { maxBatch: MAX_BATCH, delayMs: 0, spin: true },
    ],
    image: '1x28x28',
    modelNote: 'model: seeded SeedCNN (speed does not depend on the weights) quantized by Kiln\'s PTQ (min/max, uint8 activations, per-channel int8 weights); ORT runs its fp32 export and the QDQ export of the int8 graph',
  };
}

/** A torchvision export, quantized by Kiln as the models section does; undefined when it is not in `dir`. */
async function torchvisionServed(dir: string, work: string, name: string): Promise<ServedModel | undefined> {
  const { exporter, files } = torchvisionFiles(dir);
  const file = files.find((f) => basename(f, `.${exporter}.onnx`) === name);
  if (file === undefined) return undefined;
  const model = await torchvisionModel(dir, file, exporter);
  if (model.int8 === undefined || model.qdqBytes === undefined) throw new Error(`${name}: ${model.int8Reason ?? 'no int8 graph'}`);
  const int8Kiln = join(work, `${name}-int8.kiln`);
  await save(model.int8, int8Kiln);
  const int8Onnx = join(work, `${name}-int8-qdq.onnx`);
  await writeFile(int8Onnx, model.qdqBytes);
  const input = (model.fp32 as Graph).inputs[0]!.name;
  const cores = availableParallelism();
  const batchMs = await oneThreadRunMs(model.int8, model.input(MAX_BATCH));
  const delayMs = Math.max(1, Math.round(DELAY_FRACTION * batchMs));
  return {
    name,
    title: `Serving under load, a real architecture: kiln serve (int8 ${name}, ${model.shape.join('x')}) with and without micro-batching vs the same server on onnxruntime-node fp32 and int8`,
    int8Kiln, fp32Onnx: join(dir, file), int8Onnx,
    ...requestBody(input, model.input(1).data, [1, ...model.shape]),
    // One batch in flight as well: each runs on every thread alone, the shorter tail for runs this
    // long. And one batch in flight per core, each on one thread (as Triton's instances with one
    // intra-op thread each), with a delay that lets a batch fill: a request then waits for its own
    // batch only, not behind another's.
    batching: [
      { maxBatch: MAX_BATCH, delayMs: 0 },
      { maxBatch: MAX_BATCH, delayMs: 0, inFlight: 1 },
      { maxBatch: MAX_BATCH, delayMs, inFlight: cores, threads: 1, idle: true },
    ],
    image: model.shape.join('x'),
    modelNote: `model: torchvision ${name} (${file}, random weights: speed does not depend on them) quantized by Kiln's PTQ as in the models section (min/max over seeded image-like inputs, uint8 activations, per-channel int8 weights); ORT runs the exported file and the QDQ export of the int8 graph. The --threads 1 row's delay, ${delayMs} ms, is a fifth of a batch of ${MAX_BATCH} on one thread (${batchMs.toFixed(1)} ms, session.run in the bench's process before the servers start); with --run-when-idle it applies only while a batch runs, so a lone request (1 connection) does not wait it`,
  };
}

/** Median time of a full batch's run on one thread, in this process, after one run to warm up. */
async function oneThreadRunMs(graph: Graph, input: Tensor<'float32'>): Promise<number> {
  const session = await InferenceSession.create(graph, { intraOpNumThreads: 1 });
  try {
    const feeds = { [session.inputNames[0]!]: input };
    await session.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[1]!;
  } finally {
    session.release();
  }
}

export async function benchServe(report: Report, opts: ServeBenchOptions): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-bench-serve-'));
  try {
    await measureServed(report, opts, dir, await seedCnnServed(dir));
    if (opts.realModels === undefined) return;
    for (const name of REAL_MODELS) {
      const served = await torchvisionServed(opts.realModels, dir, name);
      if (served === undefined) {
        process.stdout.write(`serve bench: no ${name} export in ${opts.realModels}: skipped\n`);
        continue;
      }
      await measureServed(report, opts, dir, served);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every server on one model, at each concurrency: one section of the report. */
async function measureServed(report: Report, opts: ServeBenchOptions, dir: string, model: ServedModel): Promise<void> {
  const threads = availableParallelism();
  const common = (serverThreads = threads): string[] => ['--threads', String(serverThreads), '--model-name', model.name];
  const servers: { name: string; args: string[]; batching: boolean; delayMs?: number; floor?: boolean }[] = [
    ...model.batching.map(({ maxBatch, delayMs, inFlight, threads: own, idle, spin }) => ({
      name: `Kiln int8, micro-batching up to ${maxBatch} (delay ${delayMs} ms${idle ? ' when busy' : ''}${inFlight === undefined ? '' : `, ${inFlight} in flight`}${own === undefined ? '' : `, --threads ${own}`}${spin ? ', --spin' : ''})`,
      args: [
        'serve', model.int8Kiln, ...common(own), '--max-batch', String(maxBatch), '--max-delay-ms', String(delayMs),
        ...(inFlight === undefined ? [] : ['--batches-in-flight', String(inFlight)]),
        ...(idle ? ['--run-when-idle'] : []),
        ...(spin ? ['--spin'] : []),
      ],
      batching: true,
      delayMs,
    })),
    { name: 'Kiln int8, no batching', args: ['serve', model.int8Kiln, ...common(), '--no-batching'], batching: false },
    { name: 'ORT fp32', args: ['serve', model.fp32Onnx, ...common(), '--runtime', 'onnxruntime'], batching: false },
    { name: 'ORT int8 (QDQ)', args: ['serve', model.int8Onnx, ...common(), '--runtime', 'onnxruntime'], batching: false },
  ];
  const work = join(dir, model.name);
  await mkdir(work, { recursive: true });
  // The HTTP floor replays a reply recorded from the first Kiln server (see recordReply).
  const replyFile = join(work, 'reply.bin');
  let replyHeaderLength: string | undefined;
  servers.push({ name: FLOOR_NAME, args: [replyFile], batching: false, floor: true });
  const generator = await loadGenerator(work, model.body, model.headerLength);
  const url = (base: string): string => `${base}/v2/models/${model.name}/infer`;
  interface Cell { rps: number; p50: number; p99: number; serverMs?: number; modelP99?: number; errors: number; batchSize?: number; batchRunMs?: number }
  const cells = new Map<string, Cell>();
  const notes: string[] = [];
  for (const s of servers) {
    let server: Server;
    try {
      if (s.floor && replyHeaderLength === undefined) throw new Error('no Kiln server answered, so there is no reply to replay');
      server = s.floor ? await startServer(opts.root, [...s.args, replyHeaderLength!], FLOOR_ENTRY) : await startServer(opts.root, s.args);
      if (!s.floor && replyHeaderLength === undefined) replyHeaderLength = await recordReply(url(server.base), model, replyFile);
    } catch (err) {
      notes.push(`${s.name} not measured: ${(err as Error).message.split('\n').pop()!.slice(0, 240)}`);
      continue;
    }
    try {
      process.stdout.write(`serve bench: ${model.name}: ${s.name}\n`);
      for (const connections of CONCURRENCY) {
        // Warm-up at the row's own load: the plans, arenas, batch and body buffers of the sizes
        // it brings. After an 8-connection warm-up only, the first 20 s at 64 connections of int8
        // MobileNetV2 (batched, one in flight) gave p99 335 ms and 562 requests/s; the next 20 s,
        // 124 ms and 688.
        await generator.load(url(server.base), connections, Math.min(WARM_UP_S, opts.seconds));
        if (s.floor) {
          const r = await generator.load(url(server.base), connections, opts.seconds);
          cells.set(`${s.name}/${connections}`, { rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors });
          continue;
        }
        const before = await (await fetch(`${server.base}/metrics`)).text();
        const r = await generator.load(url(server.base), connections, opts.seconds);
        const after = await (await fetch(`${server.base}/metrics`)).text();
        const size0 = histogram(before, 'kiln_batch_size');
        const size1 = histogram(after, 'kiln_batch_size');
        const run0 = histogram(before, 'kiln_batch_run_seconds');
        const run1 = histogram(after, 'kiln_batch_run_seconds');
        const batches = size1.count - size0.count;
        const served0 = histogram(before, 'kiln_http_request_duration_seconds', 'route="infer"');
        const served1 = histogram(after, 'kiln_http_request_duration_seconds', 'route="infer"');
        cells.set(`${s.name}/${connections}`, {
          rps: r.rps,
          p50: r.p50,
          p99: r.p99,
          serverMs: ((served1.sum - served0.sum) / (served1.count - served0.count)) * 1000,
          modelP99: bucketQuantile(before, after, 'kiln_model_duration_seconds', 0.99),
          errors: r.errors,
          ...(s.batching && batches > 0 ? { batchSize: (size1.sum - size0.sum) / batches, batchRunMs: ((run1.sum - run0.sum) / batches) * 1000 } : {}),
        });
      }
    } finally {
      await stopServer(server);
    }
  }
  const rows: (string | number)[][] = [];
  for (const connections of CONCURRENCY) {
    const ref = cells.get(`ORT fp32/${connections}`);
    for (const s of servers) {
      const c = cells.get(`${s.name}/${connections}`);
      if (!c) continue;
      rows.push([
        s.name, connections, c.rps, c.p50, c.p99, c.serverMs ?? '', c.modelP99 ?? '',
        ref ? c.rps / ref.rps : 'n/a', ref ? c.p99 / ref.p99 : 'n/a',
        c.batchSize ?? '', c.batchRunMs ?? '', c.errors,
      ]);
    }
  }
  const ortF = cells.get(`ORT fp32/${TARGET_CONNECTIONS}`);
  const floor = cells.get(`${FLOOR_NAME}/${TARGET_CONNECTIONS}`);
  for (const s of servers) {
    const kiln = cells.get(`${s.name}/${TARGET_CONNECTIONS}`);
    if (!s.batching || !kiln || !ortF) continue;
    const ratio = kiln.rps / ortF.rps;
    const checks = [`requests/s >= 3x the ORT fp32 server's: ${ratio.toFixed(2)}x, ${ratio >= 3 ? 'met' : 'NOT met'}`];
    checks.push(`p99 below ORT fp32's: ${kiln.p99.toFixed(2)} vs ${ortF.p99.toFixed(2)} ms, ${kiln.p99 < ortF.p99 ? 'met' : 'NOT met'}`);
    if (kiln.batchRunMs !== undefined) {
      const bound = s.delayMs! + 2 * kiln.batchRunMs;
      checks.push(`client p99 <= maxDelayMs + 2x the mean batch run time (${s.delayMs} + 2 x ${kiln.batchRunMs.toFixed(2)} = ${bound.toFixed(2)} ms): ${kiln.p99.toFixed(2)} ms, ${kiln.p99 <= bound ? 'met' : 'NOT met'}`);
      checks.push(`model p99 (queue wait + batch run, server side) within the same bound: <= ${kiln.modelP99!.toFixed(2)} ms, ${kiln.modelP99! <= bound ? 'met' : 'NOT met'}`);
      // Little's law: a closed loop of N connections completes N requests per mean latency.
      checks.push(`the client-side floor from Little's law, ${TARGET_CONNECTIONS} connections / ${Math.round(kiln.rps)} requests/s = ${((TARGET_CONNECTIONS * 1000) / kiln.rps).toFixed(2)} ms mean latency; the client bound would need ${Math.round((TARGET_CONNECTIONS * 1000) / bound)} requests/s`);
      if (floor) {
        checks.push(
          `the HTTP floor (a server that runs no model) under the same load: ${Math.round(floor.rps)} requests/s, p99 ${floor.p99.toFixed(2)} ms: ` +
            (floor.p99 > bound ? 'the bound is below even that, so no server on one event loop meets it on this machine' : `the bound is above it (Kiln's p99 is ${(kiln.p99 / floor.p99).toFixed(2)}x the floor's)`),
        );
      }
    }
    notes.push(`targets at ${TARGET_CONNECTIONS} connections, ${s.name}: ${checks.join('; ')}`);
  }
  report.add({
    title: model.title,
    baseline: `the ORT fp32 server measured in this run (same HTTP code, --runtime onnxruntime); ${generator.name} on loopback, ${opts.seconds} s per row after a ${WARM_UP_S} s warm-up at the row's connections, one ${model.image} image per request on the binary tensor endpoint; every server --threads ${threads} unless the row says otherwise; batching --max-batch ${MAX_BATCH} unless the row says otherwise; Kiln's kernel threads sleep between runs (kiln serve's default) unless the row says --spin, ORT's spin (its default, and its faster setting here: docs/serving.md); p50/p99 client side, ${generator.latency}`,
    columns: ['server', 'connections', 'requests/s', 'p50 ms', 'p99 ms', 'server-side mean ms', 'model p99 ms', 'requests/s vs ORT fp32', 'p99 / ORT fp32 p99', 'mean batch (images)', 'mean batch run ms', 'errors'],
    rows,
    notes: [
      ...notes,
      `model p99 ms: kiln_model_duration_seconds, from a request handed to the model (run()) to its outputs back in the event loop: its wait in the micro-batch queue and its batch's run; the upper bound of the histogram bucket holding the 99th percentile (buckets ${MODEL_BUCKETS.map((b) => +(b * 1000).toPrecision(3)).join(', ')} ms)`,
      `${FLOOR_NAME}: bench/http-floor.ts, a node:http server that reads each body and answers with a reply recorded from the first Kiln server (same bytes), running no model: what one event loop reaches under this load on this machine whatever the model does`,
      'server-side mean ms: kiln_http_request_duration_seconds (a request\'s arrival in the server\'s event loop to its response\'s end, infer requests); the rest of the client\'s latency is time in socket buffers and the client\'s own event loop',
      idleNote(),
      `the load generator (${generator.name}) runs on the same ${threads} cores as the server it loads, so it competes with it for CPU: absolute figures are lower than on a separate client machine, and the ratios hold only for this setup. ${generator.why}`,
      model.modelNote,
    ],
  });
}

