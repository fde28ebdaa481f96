// Helpers of the `kiln serve` tests: the real CLI in a child process (the TypeScript sources, run
// through test/support/register-ts-source.mjs, so the code as it is now, not a stale dist/), its
// bound port read from the startup line, and small HTTP clients: KServe v2 JSON and binary
// requests, raw sockets for the misbehaving clients, and a /metrics reader.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const loader = join(root, 'test/support/register-ts-source.mjs');
const cliUrl = pathToFileURL(join(root, 'src/cli/main.ts')).href;

export interface ServerProcess {
  child: ChildProcessWithoutNullStreams;
  port: number;
  base: string;
  /** Everything the child wrote so far. */
  output(): string;
  /** Resolves with the exit code once the child ends. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Starts `kiln serve <args> --port 0` and resolves once it prints its ready line. */
export async function startServer(args: string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  const script = `const { main } = await import(${JSON.stringify(cliUrl)}); await main(['node', 'kiln', ...process.argv.slice(1)]);`;
  const child = spawn(process.execPath, ['--import', loader, '--input-type=module', '-e', script, 'serve', ...args, '--port', '0'], {
    cwd: root,
    env: { ...process.env, ...env },
  });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kiln serve did not get ready in 90 s:\n${text}`)), 90_000);
    const check = (): void => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(text);
      if (m && /ready: model/.test(text)) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`kiln serve exited (${code}) before it was ready:\n${text}`));
    });
  });
  return {
    child,
    port,
    base: `http://127.0.0.1:${port}`,
    output: () => text,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A KServe v2 JSON request body for float32 `data` of `shape`. */
export function jsonRequest(name: string, data: ArrayLike<number>, shape: number[]): string {
  return JSON.stringify({ inputs: [{ name, shape, datatype: 'FP32', data: Array.from(data) }] });
}

/** A binary-extension request: the JSON header, then the float32 bytes; asks for binary outputs. */
export function binaryRequest(name: string, data: Float32Array, shape: number[]): { body: Buffer; headerLength: number } {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name, shape, datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }], parameters: { binary_data_output: true } }));
  return { body: Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]), headerLength: header.length };
}

/** One value of a metric (summing over the series whose labels include `labels`), from Prometheus text. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const has = Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`));
    if (!has) continue;
    sum += Number(m[3]);
    found = true;
  }
  return found ? sum : NaN;
}

export async function metrics(base: string): Promise<string> {
  const r = await fetch(`${base}/metrics`);
  return r.text();
}

/** A raw TCP connection and what it has received. */
export interface RawClient {
  socket: Socket;
  received(): string;
  /** Resolves when the server closes or resets the connection. */
  closed: Promise<void>;
  /** Resolves once `text` has been received (or rejects when the connection closes first). */
  waitFor(text: RegExp, timeoutMs?: number): Promise<string>;
}

export function rawClient(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const listeners: (() => void)[] = [];
    socket.on('data', (d) => {
      data += d.toString('latin1');
      for (const l of listeners.slice()) l();
    });
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => data,
        closed,
        waitFor(text, timeoutMs = 30_000) {
          return new Promise((res, rej) => {
            const check = (): void => {
              if (text.test(data)) {
                clearTimeout(timer);
                res(data);
              }
            };
            const timer = setTimeout(() => rej(new Error(`no ${text} in ${timeoutMs} ms; received: ${data.slice(0, 300)}`)), timeoutMs);
            listeners.push(check);
            void closed.then(() => setTimeout(() => (text.test(data) ? res(data) : rej(new Error(`closed without ${text}; received: ${data.slice(0, 300)}`))), 0));
            check();
          });
        },
      }),
    );
    socket.once('error', reject);
  });
}
