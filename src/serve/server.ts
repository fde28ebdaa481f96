/**
 * An HTTP server for one model on node:http, speaking the KServe v2 / Open Inference Protocol:
 *
 *   POST /v2/models/<name>/infer    JSON or binary-tensor inference
 *   GET  /v2/models/<name>          model metadata;  GET /v2/models/<name>/ready
 *   GET  /v2/health/live, /healthz  liveness (the process answers)
 *   GET  /v2/health/ready, /readyz  readiness (model loaded, not draining)
 *   GET  /v2                        server metadata;  GET /metrics  Prometheus text
 *
 * Limits come from node:http itself where it has them (requestTimeout: 408 and close for a client
 * that does not finish its request in time; maxConnections: excess sockets dropped; keep-alive
 * timeout) and from here for the body (413 before reading past `maxBodyBytes`). Bodies are read
 * into memory only up to that cap, so JSON parsing on the event loop is bounded too (about 10 ms
 * per MB of JSON); large tensors belong on the binary endpoint. Runs go to the model's async run(),
 * which leaves the event loop (and merges concurrent requests when the session micro-batches).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { ErrorCode } from '../errors.js';
import { defaultProducer } from '../runtime/kiln-file.js';
import type { DType, Tensor } from '../tensor.js';
import { integer, onlyKeys, options as checkOptions, rangeError, string, typeError } from '../validate.js';
import { ServeMetrics, type QueueProbe } from './metrics.js';
import { BodyBuffers, readBody } from './request-body.js';
import { datatypeOf, encodeInferResponse, HttpError, InferRequestDecoder, type ModelSignature } from './protocol.js';

/**
 * What the server needs of a model: an {@link InferenceSession} fits as it is; another runtime
 * fits behind a small adapter (the load bench serves onnxruntime-node this way).
 */
export interface ServableModel extends ModelSignature, QueueProbe {
  run(feeds: Record<string, Tensor<DType>>): Promise<Record<string, Tensor<DType>>>;
}

/** Options of {@link createServer}. */
export interface ServeOptions {
  /** The model's name in the URLs (`/v2/models/<name>/infer`); default 'model'. */
  modelName?: string;
  /** Largest request body in bytes (default 8 MiB); a larger one is answered 413 and its connection closed. */
  maxBodyBytes?: number;
  /** Time a client has to send a whole request, headers and body, in ms (default 30 000); then 408 and close. */
  requestTimeoutMs?: number;
  /** Most open connections (default 1024); further ones are closed at once. Bounds requests in flight too. */
  maxConnections?: number;
  /** Idle keep-alive connections are closed after this many ms (default 5000). */
  keepAliveTimeoutMs?: number;
  /** Metrics to record into (default: a fresh {@link ServeMetrics}); pass the one whose `onBatch` the session reports to. */
  metrics?: ServeMetrics;
}

/** A server made by {@link createServer}. */
export interface KilnServer {
  /** The node:http server underneath. */
  readonly http: Server;
  readonly metrics: ServeMetrics;
  /** The model is loaded and the server is not draining. */
  readonly ready: boolean;
  /** Starts listening (port 0: any free port); resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /**
   * Graceful shutdown: stops accepting connections, reports not ready, closes idle keep-alive
   * connections, lets requests in flight finish (their responses close their connections), and
   * resolves once every connection is closed, or after `timeoutMs` (default 30 000) by closing
   * the rest, with `forced: true`.
   */
  close(options?: { timeoutMs?: number }): Promise<{ forced: boolean }>;
}

export const SERVE_DEFAULTS = {
  modelName: 'model',
  maxBodyBytes: 8 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  maxConnections: 1024,
  keepAliveTimeoutMs: 5000,
} as const;

const SERVE_OPTION_KEYS = ['modelName', 'maxBodyBytes', 'requestTimeoutMs', 'maxConnections', 'keepAliveTimeoutMs', 'metrics'] as const;

/** Requests a client error answers 400 for (the rest are the server's fault: 500). */
const CLIENT_ERROR_CODES: readonly string[] = [ErrorCode.INVALID_ARG, ErrorCode.SHAPE_MISMATCH];

/**
 * Serves `model` (or the model a Promise resolves to: the server can listen, and answer liveness,
 * while it loads; readiness and inference wait for it) over HTTP. Call `listen()` to start.
 * @throws TypeError/RangeError (ERR_KILN_INVALID_ARG) for bad options
 */
export function createServer(model: ServableModel | Promise<ServableModel>, options?: ServeOptions): KilnServer {
  const opts = checkOptions<ServeOptions>('options', options);
  onlyKeys('options', opts, SERVE_OPTION_KEYS);
  const modelName = opts.modelName === undefined ? SERVE_DEFAULTS.modelName : string('options.modelName', opts.modelName);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(modelName)) throw rangeError('options.modelName', "a name of letters, digits, '.', '_' and '-' (it goes into URLs)", modelName);
  const maxBodyBytes = opts.maxBodyBytes === undefined ? SERVE_DEFAULTS.maxBodyBytes : integer('options.maxBodyBytes', opts.maxBodyBytes, 1, 2 ** 31);
  const requestTimeoutMs = opts.requestTimeoutMs === undefined ? SERVE_DEFAULTS.requestTimeoutMs : integer('options.requestTimeoutMs', opts.requestTimeoutMs, 1, 3_600_000);
  const maxConnections = opts.maxConnections === undefined ? SERVE_DEFAULTS.maxConnections : integer('options.maxConnections', opts.maxConnections, 1, 1 << 20);
  const keepAliveTimeoutMs = opts.keepAliveTimeoutMs === undefined ? SERVE_DEFAULTS.keepAliveTimeoutMs : integer('options.keepAliveTimeoutMs', opts.keepAliveTimeoutMs, 1, 3_600_000);
  if (opts.metrics !== undefined && !(opts.metrics instanceof ServeMetrics)) throw typeError('options.metrics', 'a ServeMetrics', opts.metrics);
  const metrics = opts.metrics ?? new ServeMetrics();
  const bodyBuffers = new BodyBuffers();

  let loaded: ServableModel | undefined;
  let decoder: InferRequestDecoder | undefined;
  let loadError: Error | undefined;
  let draining = false;
  Promise.resolve(model).then(
    (m) => {
      decoder = new InferRequestDecoder(m);
      loaded = m;
      metrics.watch(m);
    },
    (err: unknown) => {
      loadError = err instanceof Error ? err : new Error(String(err));
    },
  );

  const http = createHttpServer({
    requestTimeout: requestTimeoutMs,
    headersTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    // How often node:http looks for requests past their timeout (its default is 30 s).
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(requestTimeoutMs / 4))),
  });
  http.maxConnections = maxConnections;

  const modelPath = `/v2/models/${modelName}`;
  const routes = new Map<string, { method: string; name: string; handle: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void }>(Object.entries({
    '/healthz': { method: 'GET', name: 'health_live', handle: (_q, res) => sendJson(res, 200, { live: true }) },
    '/v2/health/live': { method: 'GET', name: 'health_live', handle: (_q, res) => sendJson(res, 200, { live: true }) },
    '/readyz': { method: 'GET', name: 'health_ready', handle: (_q, res) => sendReady(res) },
    '/v2/health/ready': { method: 'GET', name: 'health_ready', handle: (_q, res) => sendReady(res) },
    [`${modelPath}/ready`]: { method: 'GET', name: 'model_ready', handle: (_q, res) => sendReady(res) },
    '/v2': { method: 'GET', name: 'server_metadata', handle: (_q, res) => sendJson(res, 200, { name: 'kiln', version: defaultProducer().split(' ')[1] ?? 'unknown', extensions: ['binary_tensor_data'] }) },
    [modelPath]: { method: 'GET', name: 'model_metadata', handle: (_q, res) => sendJson(res, 200, metadata(modelName, current())) },
    [`${modelPath}/infer`]: { method: 'POST', name: 'infer', handle: (req, res) => infer(req, res) },
    '/metrics': {
      method: 'GET',
      name: 'metrics',
      handle: async (_q, res) => {
        const text = await metrics.render();
        send(res, 200, { 'content-type': metrics.contentType }, Buffer.from(text));
      },
    },
  }));

  /** The loaded model, or 503 while it loads (500 if it failed to). */
  function current(): ServableModel {
    if (loaded) return loaded;
    if (loadError) throw new HttpError(500, `The model failed to load: ${loadError.message}`);
    throw new HttpError(503, 'The model is still loading');
  }

  function sendReady(res: ServerResponse): void {
    const ready = loaded !== undefined && !draining;
    sendJson(res, ready ? 200 : 503, { ready, ...(draining ? { reason: 'draining' } : loaded ? {} : { reason: loadError ? 'model failed to load' : 'loading' }) });
  }

  async function infer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const m = current();
    const headerLength = parseHeaderLength(req.headers['inference-header-content-length']);
    const body = await readBody(req, maxBodyBytes, headerLength, bodyBuffers);
    const request = decoder!.decode(body, headerLength);
    let encoded: ReturnType<typeof encodeInferResponse>;
    const modelDone = metrics.beginModel();
    try {
      let outputs: Record<string, Tensor<DType>>;
      try {
        outputs = await m.run(request.feeds);
        modelDone();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        throw new HttpError(typeof code === 'string' && CLIENT_ERROR_CODES.includes(code) ? 400 : 500, (err as Error).message ?? String(err));
      }
      encoded = encodeInferResponse(modelName, request, outputs);
    } finally {
      // The run has settled and the response is a copy of its outputs: nothing reads the input
      // tensors (views of a binary body) any more, even where an output shares their memory.
      if (headerLength !== undefined) bodyBuffers.giveBack(body);
    }
    const headers: Record<string, string | number> =
      encoded.headerLength === undefined
        ? { 'content-type': 'application/json' }
        : { 'content-type': 'application/octet-stream', 'inference-header-content-length': encoded.headerLength };
    send(res, 200, headers, encoded.body);
  }

  function send(res: ServerResponse, status: number, headers: Record<string, string | number>, body: Buffer): void {
    if (res.headersSent || res.destroyed) return;
    // Draining: each response closes its connection, so keep-alive clients move to other replicas.
    if (draining) res.setHeader('connection', 'close');
    res.writeHead(status, { ...headers, 'content-length': body.length });
    res.end(body);
  }

  function sendJson(res: ServerResponse, status: number, value: unknown): void {
    send(res, status, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(value)));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes.get(path);
    const end = metrics.begin();
    res.on('close', () => end(route?.name ?? 'not_found', res.writableFinished ? String(res.statusCode) : 'closed'));
    try {
      if (!route) throw new HttpError(404, `No route for ${req.method} ${path}: the model is at ${modelPath} (see GET ${modelPath})`);
      if (req.method !== route.method && !(route.method === 'GET' && req.method === 'HEAD')) {
        res.setHeader('allow', route.method);
        throw new HttpError(405, `Expected ${route.method} for ${path} but received ${req.method}`);
      }
      await route.handle(req, res);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      // A body left unread (too large, or refused before reading): answer, then close.
      if (!req.complete && !res.headersSent) lingeringClose(req, res);
      sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
    }
  }

  http.on('request', (req: IncomingMessage, res: ServerResponse) => void handle(req, res));
  // Expect: 100-continue: refuse an oversized body before the client sends it.
  http.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (Number(req.headers['content-length']) > maxBodyBytes) {
      void handle(req, res);
      return;
    }
    res.writeContinue();
    void handle(req, res);
  });

  return {
    http,
    metrics,
    get ready() {
      return loaded !== undefined && !draining && http.listening;
    },
    listen(port = 0, host = '127.0.0.1') {
      return new Promise<AddressInfo>((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        http.once('error', onError);
        http.listen(port, host, () => {
          http.off('error', onError);
          resolve(http.address() as AddressInfo);
        });
      });
    },
    async close({ timeoutMs = 30_000 } = {}) {
      draining = true;
      let forced = false;
      const closed = new Promise<void>((resolve) => {
        if (!http.listening) return resolve();
        http.close(() => resolve());
      });
      http.closeIdleConnections();
      const timer = setTimeout(() => {
        forced = true;
        http.closeAllConnections();
      }, timeoutMs);
      await closed;
      clearTimeout(timer);
      return { forced };
    },
  };
}

/** How long a connection whose body was refused stays half-open, its input discarded. */
const LINGER_MS = 2000;

/**
 * Closes the connection after this response without losing it: closing a socket whose input is
 * unread makes the kernel send a reset, which can discard the response before the client reads it
 * (a client still streaming a 1 GB body would see only a reset). So, as nginx's lingering_close:
 * send the response, half-close (FIN), keep discarding what the client sends for LINGER_MS, then
 * destroy. node:http would otherwise destroy the socket as soon as the response is written.
 */
function lingeringClose(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  const socket = req.socket;
  req.resume();
  socket.destroySoon = function (this: typeof socket) {
    this.end();
    setTimeout(() => this.destroy(), LINGER_MS).unref();
  };
}

/** The binary extension's header length, when the request has one. */
function parseHeaderLength(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new HttpError(400, `Expected Inference-Header-Content-Length to be a byte count but received '${String(value)}'`);
  }
  return n;
}

/** The protocol's model metadata. */
function metadata(name: string, m: ModelSignature): object {
  const tensors = (names: readonly string[], types: readonly DType[], shapes: readonly (readonly (number | string)[])[]) =>
    names.map((n, i) => ({ name: n, datatype: datatypeOf(types[i]!), shape: shapes[i]!.map((d) => (typeof d === 'number' ? d : -1)) }));
  return {
    name,
    versions: [],
    platform: 'kiln',
    inputs: tensors(m.inputNames, m.inputTypes, m.inputShapes),
    outputs: tensors(m.outputNames, m.outputTypes, m.outputShapes),
  };
}
