/**
 * Runs a TypeScript script of this repository in a plain `node` child process (through
 * register-ts-source.mjs, with --expose-gc) without blocking the test's event loop (a blocking
 * spawnSync longer than a minute starves vitest's worker RPC), and returns its exit status, its
 * last stdout line parsed as JSON, and its stderr.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Under `npm run test:asan` (KILN_SANITIZED=1) the memory-bound tests' children keep a small ASan
 * quarantine: the default (256 MiB of freed blocks held back to catch use-after-free) fills while
 * they run and reads as growth. What is left of ASan's own growth (shadow memory, 1/8 of the heap,
 * and per-thread allocator caches) gets SANITIZER_SLACK_MIB. Terminated Workers are the exception:
 * under ASan each one leaves ~25 MiB resident that the allocator does not give back (measured: 420
 * -> 680 MiB over 12 rounds, with the quarantine at 16 MiB; the plain build stays within 3 MiB), so
 * that test checks its memory bound in the plain build (npm test) only.
 */
export const SANITIZED = process.env.KILN_SANITIZED === '1';
export const SANITIZER_CHILD_ENV: Record<string, string> = SANITIZED ? { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? ''}:quarantine_size_mb=16` } : {};
export const SANITIZER_SLACK_MIB = SANITIZED ? 96 : 0;

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  json: Record<string, unknown>;
  stderr: string;
}

/** `nodeFlags` go before the script (V8 / Node options); `env` is added to this process's environment. */
export function runTsChild(script: string, args: string[], timeoutMs: number, nodeFlags: string[] = [], env: Record<string, string> = {}): Promise<ChildResult> {
  const child = spawn(process.execPath, ['--expose-gc', ...nodeFlags, '--import', join(ROOT, 'test/support/register-ts-source.mjs'), join(ROOT, script), ...args], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
      } catch {
        // the status and stderr say what happened
      }
      resolve({ status, signal, json, stderr });
    });
  });
}
