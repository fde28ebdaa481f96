/**
 * The worker side of the protocol: answers every RunRequest from the parent with the outcome of a
 * test function. A worker entry script calls `serveTests` with the function that runs a test
 * (worker.ts: the real runner; tests pass fakes that crash or hang).
 */
import { outcomeOfError, type TestOutcome } from './outcome.js';
import type { RunRequest, WorkerMessage } from './protocol.js';

/** Runs one test: its folder and name in, its outcome out. */
export type TestFunction = (dir: string, name: string) => Promise<TestOutcome>;

/** Serves requests until the parent disconnects. Throws when this process has no IPC channel. */
export function serveTests(runTest: TestFunction): void {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('The conformance worker must be started by the runner (child_process.fork)');
  const post = (message: WorkerMessage): void => void send(message);
  // Requests come one at a time (the runner waits for each result), so no queue is needed.
  process.on('message', (request: RunRequest) => {
    if (request?.type !== 'run') return;
    runTest(request.dir, request.name)
      .catch(outcomeOfError)
      .then((outcome) => post({ type: 'result', id: request.id, outcome }));
  });
  process.on('disconnect', () => process.exit(0));
  post({ type: 'ready' });
}
