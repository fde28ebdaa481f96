/**
 * Messages between the runner and its worker processes. The runner sends one test at a time and
 * waits for its result, so when a worker dies the test it was running is known exactly.
 */
import type { TestOutcome } from './outcome.js';

/** Runner to worker: run the test in `dir`. */
export interface RunRequest {
  type: 'run';
  id: number;
  name: string;
  dir: string;
}

/** Worker to runner: the outcome of request `id`. */
export interface RunResult {
  type: 'result';
  id: number;
  outcome: TestOutcome;
}

/** Worker to runner, once, when it is ready for requests (its imports, the addon, are loaded). */
export interface WorkerReady {
  type: 'ready';
}

export type WorkerMessage = RunResult | WorkerReady;
