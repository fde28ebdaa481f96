/**
 * Runs tests in child worker processes, `jobs` at a time. A worker that dies (signal, abnormal
 * exit) or overruns the per-test timeout is counted as a 'crash' of the test it was running and
 * replaced; the run goes on.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { clip, type TestOutcome } from './outcome.js';
import type { RunRequest, WorkerMessage } from './protocol.js';

/** A test as the pool sees it. */
export interface PoolTest {
  name: string;
  dir: string;
}

export interface PoolOptions {
  /** Worker processes side by side (default 1). */
  jobs?: number;
  /** A test running longer than this kills its worker and counts as a crash (default 60 s). */
  timeoutMs?: number;
  /** The worker entry script (default: worker.js next to this module). */
  workerScript?: string;
  /** Node options for the workers (default: none; tests add a TypeScript loader). */
  execArgv?: string[];
  /** Working folder of the workers (where a crashing one may leave a core file); default this process's. */
  cwd?: string;
  /** Called as each test ends, in completion order. */
  onResult?: (test: PoolTest, outcome: TestOutcome) => void;
}

/** Bytes of a worker's stderr kept to explain a crash. */
const STDERR_TAIL = 2000;

/** The compiled worker next to this module (dist/bench/conformance/worker.js). */
function defaultWorkerScript(): string {
  return fileURLToPath(new URL('./worker.js', import.meta.url));
}

/**
 * One worker process and the test it is running. A worker posts a test's result only after the
 * test's session is released, so a crash while running or releasing is the in-flight test's; a
 * crash the garbage collector triggers later is charged to whichever test is running then.
 */
class Worker {
  private readonly child: ChildProcess;
  private stderr = '';
  private current: { test: PoolTest; id: number; resolve: (o: TestOutcome) => void; timer: NodeJS.Timeout } | undefined;
  private dead = false;
  readonly ready: Promise<void>;

  constructor(script: string, execArgv: string[], cwd: string | undefined) {
    this.child = fork(script, [], { execArgv, cwd, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    // A send to a worker that has just died fails here; its 'exit' below does the accounting.
    this.child.on('error', () => undefined);
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-STDERR_TAIL);
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') resolve();
        else if (m.type === 'result' && this.current?.id === m.id) this.finish(m.outcome);
      });
      this.child.on('exit', (code, signal) => {
        this.dead = true;
        const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
        reject(new Error(`The conformance worker ${how} before it was ready: ${clip(this.stderr)}`));
        this.finish({ category: 'crash', message: clip(`worker ${how}${this.stderr ? `; stderr: ${this.stderr}` : ''}`) });
      });
    });
    // A worker that dies before 'ready' only matters when someone waits for it.
    this.ready.catch(() => undefined);
  }

  get alive(): boolean {
    return !this.dead;
  }

  run(test: PoolTest, id: number, timeoutMs: number): Promise<TestOutcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        // The outcome is settled now; the exit that follows the kill finds nothing to settle.
        this.finish({ category: 'crash', message: `timeout: still running after ${timeoutMs / 1000} s` });
        this.child.kill('SIGKILL');
        this.dead = true;
      }, timeoutMs);
      this.current = { test, id, resolve, timer };
      this.stderr = '';
      const request: RunRequest = { type: 'run', id, name: test.name, dir: test.dir };
      this.child.send(request);
    });
  }

  private finish(outcome: TestOutcome): void {
    const current = this.current;
    if (current === undefined) return;
    this.current = undefined;
    clearTimeout(current.timer);
    current.resolve(outcome);
  }

  close(): void {
    if (!this.dead) this.child.disconnect();
  }
}

/** Runs every test; resolves with the outcomes in the order of `tests`. */
export async function runInWorkers(tests: readonly PoolTest[], options: PoolOptions = {}): Promise<TestOutcome[]> {
  const jobs = Math.max(1, Math.min(options.jobs ?? 1, tests.length || 1));
  const timeoutMs = options.timeoutMs ?? 60_000;
  const script = options.workerScript ?? defaultWorkerScript();
  const execArgv = options.execArgv ?? [];
  const outcomes: TestOutcome[] = new Array(tests.length);
  let next = 0;
  let id = 0;
  const lane = async (): Promise<void> => {
    let worker: Worker | undefined;
    try {
      while (next < tests.length) {
        const index = next++;
        const test = tests[index]!;
        if (worker === undefined || !worker.alive) {
          worker = new Worker(script, execArgv, options.cwd);
          await worker.ready;
        }
        const outcome = await worker.run(test, ++id, timeoutMs);
        outcomes[index] = outcome;
        options.onResult?.(test, outcome);
      }
    } finally {
      worker?.close();
    }
  };
  await Promise.all(Array.from({ length: jobs }, lane));
  return outcomes;
}
