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
