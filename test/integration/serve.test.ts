// `kiln serve` end to end: the real CLI in a child process serving a SeedCNN briefly trained on
// MNIST (fp32 and its int8 PTQ), asked over HTTP with real held-out digits. Answers must equal
// InferenceSession.run on the same images (JSON and binary tensors); health, readiness and
// metrics must say what happened; bad clients (malformed JSON, wrong sizes, a 1 GB body declared
// or streamed, a body that never ends, a flood of connections) get a 4xx or a closed connection
// while the server's memory stays bounded and other clients are answered; SIGTERM drains.
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { mnist } from '../../src/data/mnist.js';
import { seedCNN } from '../../src/nn/models.js';
import { quantize } from '../../src/quant/ptq.js';
import { save } from '../../src/runtime/model-io.js';
import { InferenceSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor.js';
import { defaultMnistRecipe } from '../../src/train/recipes.js';
import { train } from '../../src/train/trainer.js';
import { datasetSlice } from '../support/datasets.js';
import { binaryRequest, jsonRequest, metrics, metricValue, rawClient, type ServerProcess, startServer } from './serve-support.js';

const PIXELS = 28 * 28;
const SHAPE = [1, 1, 28, 28];
const { train: trainSet, test } = mnist({ seed: 1 });
const digit = (i: number): Float32Array => test.images.slice(i * PIXELS, (i + 1) * PIXELS);

let dir = '';
let fp32Path = '';
let int8Path = '';
/** Reference logits of the first digits, one session.run per digit (batch 1). */
const fp32Logits: Float32Array[] = [];
const int8Logits: Float32Array[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-serve-'));
  const model = seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
  await train(model, datasetSlice(trainSet, 0, 2000, 'mnist-2000'), { ...defaultMnistRecipe, epochs: 1 });
  model.eval();
  fp32Path = join(dir, 'digits.kiln');
  await save(model, fp32Path, { inputShape: [1, 28, 28] });
  const calibration = new Tensor('float32', trainSet.images.slice(0, 64 * PIXELS), [64, 1, 28, 28]);
  const { graph } = await quantize(model, calibration, { method: 'minmax', reportImages: 0 });
  int8Path = join(dir, 'digits-int8.kiln');
  await save(graph, int8Path);
  for (const [path, into] of [[fp32Path, fp32Logits], [int8Path, int8Logits]] as const) {
    const session = await InferenceSession.create(path);
    for (let i = 0; i < 16; i++) into.push((await session.run({ input: new Tensor('float32', digit(i), SHAPE) })).logits!.data as Float32Array);
    session.release();
  }
}, 300_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function inferJson(base: string, model: string, data: Float32Array, shape = SHAPE): Promise<Response> {
  return fetch(`${base}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonRequest('input', data, shape) });
}

async function inferBinary(base: string, model: string, data: Float32Array): Promise<{ status: number; logits: Float32Array; header: { outputs: { name: string; shape: number[]; datatype: string; parameters: { binary_data_size: number } }[] } }> {
  const { body, headerLength } = binaryRequest('input', data, SHAPE);
  const r = await fetch(`${base}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) }, body });
  const bytes = Buffer.from(await r.arrayBuffer());
  const length = Number(r.headers.get('inference-header-content-length'));
  const header = JSON.parse(bytes.subarray(0, length).toString());
  const raw = bytes.subarray(length);
  const logits = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  return { status: r.status, logits, header };
}

describe('kiln serve: answers, health and metrics (default options: micro-batching on)', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer([fp32Path]);
  }, 120_000);
  afterAll(() => server?.stop());

  it('JSON infer on a real digit equals InferenceSession.run on it', async () => {
    for (let i = 0; i < 4; i++) {
      const r = await inferJson(server.base, 'digits', digit(i));
      expect(r.status).toBe(200);
      const body = (await r.json()) as { model_name: string; outputs: { name: string; shape: number[]; datatype: string; data: number[] }[] };
      expect(body.model_name).toBe('digits');
      expect(body.outputs.map((o) => [o.name, o.datatype, o.shape])).toEqual([['logits', 'FP32', [1, 10]]]);
      expect(body.outputs[0]!.data).toEqual(Array.from(fp32Logits[i]!));
    }
  });

  it('binary tensor infer returns the same bits as InferenceSession.run', async () => {
    const r = await inferBinary(server.base, 'digits', digit(5));
    expect(r.status).toBe(200);
    expect(r.header.outputs[0]).toMatchObject({ name: 'logits', datatype: 'FP32', shape: [1, 10], parameters: { binary_data_size: 40 } });
    expect(Array.from(r.logits)).toEqual(Array.from(fp32Logits[5]!));
  });

  it('binary tensors after headers of every length mod 8, sized or chunked in odd pieces: the same bits (aligned data is viewed in place, the rest copied)', async () => {
    for (let extra = 0; extra < 8; extra++) {
      for (const chunked of [false, true]) {
        const i = (extra * 2 + Number(chunked)) % 16;
        const { body: plain, headerLength: plainLength } = binaryRequest('input', digit(i), SHAPE);
        // JSON allows whitespace after the header object: each extra byte shifts where the tensor starts.
        const body = Buffer.concat([plain.subarray(0, plainLength), Buffer.alloc(extra, 0x20), plain.subarray(plainLength)]);
        const headerLength = plainLength + extra;
        const pieces = [0, 7, 1000, 2049, body.length].map((at) => Math.min(at, body.length));
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let k = 1; k < pieces.length; k++) controller.enqueue(body.subarray(pieces[k - 1], pieces[k]));
            controller.close();
          },
        });
        const r = await fetch(`${server.base}/v2/models/digits/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) },
          ...(chunked ? { body: stream, duplex: 'half' } : { body }),
        } as RequestInit);
        expect(r.status, `header of ${headerLength} bytes, ${chunked ? 'chunked' : 'sized'}`).toBe(200);
        const answer = Buffer.from(await r.arrayBuffer());
        const length = Number(r.headers.get('inference-header-content-length'));
        const logits = new Float32Array(answer.buffer.slice(answer.byteOffset + length, answer.byteOffset + answer.length));
        expect(Array.from(logits)).toEqual(Array.from(fp32Logits[i]!));
      }
    }
  });

  it('a request of several digits is answered for each', async () => {
    const batch = new Float32Array(3 * PIXELS);
    for (let i = 0; i < 3; i++) batch.set(digit(i), i * PIXELS);
    const r = await inferJson(server.base, 'digits', batch, [3, 1, 28, 28]);
    const body = (await r.json()) as { outputs: { shape: number[]; data: number[] }[] };
    expect(body.outputs[0]!.shape).toEqual([3, 10]);
    for (let i = 0; i < 3; i++) {
      const got = body.outputs[0]!.data.slice(i * 10, i * 10 + 10);
      got.forEach((v, j) => expect(v).toBeCloseTo(fp32Logits[i]![j]!, 5));
    }
  });

  it('health, readiness and metadata endpoints', async () => {
    for (const path of ['/healthz', '/v2/health/live', '/v2/health/ready', '/readyz', '/v2/models/digits/ready']) {
      expect((await fetch(`${server.base}${path}`)).status, path).toBe(200);
    }
    const meta = (await (await fetch(`${server.base}/v2/models/digits`)).json()) as object;
    expect(meta).toMatchObject({ name: 'digits', platform: 'kiln', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1, 28, 28] }], outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 10] }] });
    expect((await fetch(`${server.base}/v2/models/other`)).status).toBe(404);
    expect((await fetch(`${server.base}/v2/models/digits/infer`)).status).toBe(405);
  });

  it('/metrics counts requests and latencies by route and code, and exposes queue, batch and process metrics', async () => {
    const before = await metrics(server.base);
    const ok = metricValue(before, 'kiln_http_requests_total', { route: 'infer', code: '200' });
    const bad = metricValue(before, 'kiln_http_requests_total', { route: 'infer', code: '400' });
    for (let i = 0; i < 5; i++) await inferJson(server.base, 'digits', digit(i));
    await fetch(`${server.base}/v2/models/digits/infer`, { method: 'POST', body: '{' });
    const after = await metrics(server.base);
    expect(metricValue(after, 'kiln_http_requests_total', { route: 'infer', code: '200' })).toBe(ok + 5);
    expect(metricValue(after, 'kiln_http_requests_total', { route: 'infer', code: '400' })).toBe((Number.isNaN(bad) ? 0 : bad) + 1);
    expect(metricValue(after, 'kiln_http_request_duration_seconds_count', { route: 'infer' })).toBeGreaterThanOrEqual(ok + 6);
    for (const name of ['kiln_queue_depth', 'kiln_pending_runs', 'kiln_arena_bytes_held', 'kiln_inflight_requests', 'process_resident_memory_bytes']) {
      expect(metricValue(after, name), name).not.toBeNaN();
    }
    // The session has run: it holds at least one batch-1 arena.
    expect(metricValue(after, 'kiln_arena_bytes_held')).toBeGreaterThan(0);
    // Batching is on: each run reports its batch (here one request at a time: batches of one image).
    expect(metricValue(after, 'kiln_batch_size_sum') - metricValue(before, 'kiln_batch_size_sum')).toBe(5);
    expect(metricValue(after, 'kiln_batch_run_seconds_count') - metricValue(before, 'kiln_batch_run_seconds_count')).toBe(5);
    // Each infer request's model time is observed once, and takes some time.
    expect(metricValue(after, 'kiln_model_duration_seconds_count') - metricValue(before, 'kiln_model_duration_seconds_count')).toBe(5);
    expect(metricValue(after, 'kiln_model_duration_seconds_sum') - metricValue(before, 'kiln_model_duration_seconds_sum')).toBeGreaterThan(0);
    // This request is in flight while /metrics renders.
    expect(metricValue(after, 'kiln_inflight_requests')).toBe(1);
  });
});

describe('kiln serve: bad input', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer([fp32Path, '--no-batching', '--max-body-bytes', String(1 << 20), '--request-timeout-ms', '1500', '--max-connections', '64']);
  }, 120_000);
  afterAll(() => server?.stop());

  const rss = async (): Promise<number> => metricValue(await metrics(server.base), 'process_resident_memory_bytes');

  it('malformed JSON is 400 with the parser\'s message', async () => {
    for (const body of ['{"inputs": [', 'null', '{"inputs": []}', '{"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": "x"}]}']) {
      const r = await fetch(`${server.base}/v2/models/digits/infer`, { method: 'POST', body });
      expect(r.status, body).toBe(400);
      expect(((await r.json()) as { error: string }).error.length).toBeGreaterThan(10);
    }
  });

  it('a wrong tensor size or shape is 400 naming the input and the sizes', async () => {
    const short = await fetch(`${server.base}/v2/models/digits/infer`, { method: 'POST', body: jsonRequest('input', new Float32Array(700), SHAPE) });
    expect(short.status).toBe(400);
    expect(((await short.json()) as { error: string }).error).toBe('Expected 784 elements for input "input" of shape [1, 1, 28, 28] but received 700');
    const shape = await fetch(`${server.base}/v2/models/digits/infer`, { method: 'POST', body: jsonRequest('input', new Float32Array(784), [1, 1, 784, 1]) });
    expect(shape.status).toBe(400);
    expect(((await shape.json()) as { error: string }).error).toBe('Expected input "input" of shape [N, 1, 28, 28] but received [1, 1, 784, 1]');
    const name = await fetch(`${server.base}/v2/models/digits/infer`, { method: 'POST', body: jsonRequest('image', digit(0), SHAPE) });
    expect(((await name.json()) as { error: string }).error).toContain('Expected inputs[0].name to be one of "input" but received "image"');
    const { body, headerLength } = binaryRequest('input', digit(0), SHAPE);
    const truncated = await fetch(`${server.base}/v2/models/digits/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body: body.subarray(0, body.length - 4) });
    expect(truncated.status).toBe(400);
    expect(((await truncated.json()) as { error: string }).error).toBe('Expected 3136 bytes of binary data for input "input" but the body has 3132 left');
  });

  it('a 1 GB body is refused with 413 (declared and streamed chunked) without the server\'s memory growing', async () => {
    const before = await rss();
    const chunk = Buffer.alloc(1 << 20, 0x31);
    // Declared: the answer comes before the body is read.
    const declared = await rawClient(server.port);
    declared.socket.write(`POST /v2/models/digits/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${2 ** 30}\r\n\r\n`);
    declared.socket.write(chunk);
    expect(await declared.waitFor(/^HTTP\/1\.1 413 /)).toContain('at most 1048576 bytes');
    await declared.closed;
    // Chunked: the client streams until the server answers or closes; it never gets to 1 GB.
    const chunked = await rawClient(server.port);
    chunked.socket.write('POST /v2/models/digits/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
    let sent = 0;
    let answered = false;
    void chunked.waitFor(/^HTTP\/1\.1 413 /, 60_000).then(() => (answered = true), () => undefined);
    while (!answered && !chunked.socket.destroyed && sent < 2 ** 30) {
      const ok = chunked.socket.write(`${chunk.length.toString(16)}\r\n`) && chunked.socket.write(chunk) && chunked.socket.write('\r\n');
      sent += chunk.length;
      if (!ok) await new Promise((r) => setTimeout(r, 5));
    }
    await chunked.closed;
    expect(chunked.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(sent).toBeLessThan(2 ** 28);
    // The server kept nothing of either body (bounded by the 1 MiB cap) and answers as before.
    expect((await rss()) - before).toBeLessThan(64 * 2 ** 20);
    expect((await inferJson(server.base, 'digits', digit(0))).status).toBe(200);
  }, 120_000);

  it('a client that never finishes its body gets 408 and a closed connection after the request timeout; others are answered meanwhile', async () => {
    const slow = await rawClient(server.port);
    const started = performance.now();
    slow.socket.write('POST /v2/models/digits/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10000\r\n\r\n{"inputs": [');
    const r = await inferJson(server.base, 'digits', digit(1));
    expect(r.status).toBe(200);
    await slow.closed;
    const waited = performance.now() - started;
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(waited).toBeGreaterThan(1400);
    expect(waited).toBeLessThan(15_000);
  }, 30_000);

  it('a flood of 500 connections: past --max-connections they are closed at once, and a client already connected keeps being answered', async () => {
    // The client connects first, on a keep-alive connection it keeps.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ask = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const body = jsonRequest('input', digit(2), SHAPE);
        const req = httpRequest(`${server.base}/v2/models/digits/infer`, { method: 'POST', agent, headers: { 'content-length': Buffer.byteLength(body) } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end(body);
      });
    expect(await ask()).toBe(200);
    const flood = await Promise.all(Array.from({ length: 500 }, () => rawClient(server.port).catch(() => undefined)));
    await new Promise((r) => setTimeout(r, 300));
    const open = flood.filter((c) => c && !c.socket.destroyed && c.socket.readyState === 'open');
    const dropped = flood.filter((c) => !c || c.socket.destroyed || c.socket.readyState !== 'open').length;
    try {
      // 64 connections at most, the kept one included.
      expect(open.length).toBeLessThanOrEqual(63);
      expect(dropped).toBeGreaterThanOrEqual(437);
      for (let i = 0; i < 5; i++) expect(await ask()).toBe(200);
    } finally {
      for (const c of flood) c?.socket.destroy();
      agent.destroy();
    }
    // Once the flood is gone, new connections are answered again.
    await new Promise((r) => setTimeout(r, 200));
    expect((await inferJson(server.base, 'digits', digit(3))).status).toBe(200);
  }, 60_000);
});

describe('kiln serve: shutdown and batching', () => {
  it('SIGTERM with requests in flight: they complete, readiness turns 503, then exit code 0', async () => {
    const server = await startServer([int8Path, '--no-batching', '--spin']);
    expect(server.output()).toContain('no batching; kernel threads poll between runs;');
    try {
      // A kept connection to ask readiness on while draining (new connections are refused then).
      const probe = await rawClient(server.port);
      // Requests in flight: headers and half a body sent; the rest after SIGTERM.
      const bodies = [0, 1, 2].map((i) => Buffer.from(jsonRequest('input', digit(i), SHAPE)));
      const clients = await Promise.all(bodies.map(() => rawClient(server.port)));
      clients.forEach((c, i) => {
        const b = bodies[i]!;
        c.socket.write(`POST /v2/models/digits-int8/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${b.length}\r\n\r\n`);
        c.socket.write(b.subarray(0, b.length >> 1));
      });
      await new Promise((r) => setTimeout(r, 200));
      server.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      probe.socket.write('GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n');
      expect(await probe.waitFor(/\r\n\r\n\{.*\}/)).toMatch(/^HTTP\/1\.1 503 [\s\S]*"draining"/);
      clients.forEach((c, i) => c.socket.write(bodies[i]!.subarray(bodies[i]!.length >> 1)));
      for (const [i, c] of clients.entries()) {
        const text = await c.waitFor(/\r\n\r\n\{.*\}\]\}$/);
        expect(text).toMatch(/^HTTP\/1\.1 200 /);
        expect(text.toLowerCase()).toContain('connection: close');
        const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { outputs: { data: number[] }[] };
        expect(body.outputs[0]!.data).toEqual(Array.from(int8Logits[i]!));
      }
      expect(await server.exited).toBe(0);
      expect(server.output()).toContain('SIGTERM: draining');
    } finally {
      await server.stop();
    }
  }, 120_000);

  it('1,000 concurrent requests with batching on (one batch in flight): each answer is its digit\'s unbatched int8 result, bit for bit, and batches form', async () => {
    const server = await startServer([int8Path, '--max-batch', '32', '--max-delay-ms', '5', '--batches-in-flight', '1']);
    expect(server.output()).toContain('batching up to 32 images, 5 ms delay, 1 in flight; kernel threads sleep between runs;');
    try {
      const answers = await Promise.all(
        Array.from({ length: 1000 }, async (_, k) => {
          const i = k % 16;
          const r = await inferBinary(server.base, 'digits-int8', digit(i));
          expect(r.status).toBe(200);
          return { i, logits: r.logits };
        }),
      );
      for (const { i, logits } of answers) expect(Array.from(logits)).toEqual(Array.from(int8Logits[i]!));
      const text = await metrics(server.base);
      const batches = metricValue(text, 'kiln_batch_size_count');
      const images = metricValue(text, 'kiln_batch_size_sum');
      expect(images).toBe(1000);
      // Merged: fewer runs than requests.
      expect(batches).toBeLessThan(1000);
    } finally {
      await server.stop();
    }
  }, 180_000);
});
