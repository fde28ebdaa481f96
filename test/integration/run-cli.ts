// Runs the `kiln` command in-process through the entry point bin/kiln.js calls (`main(argv)`),
// capturing what it writes and the exit code it sets: the CLI tests' one way to call the CLI.
import { main } from '../../src/cli/main.js';

export interface CliResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export async function runCli(...args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const writeOut = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  const previousExitCode = process.exitCode;
  process.exitCode = 0;
  process.stdout.write = ((chunk: string | Uint8Array) => (out.push(String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (err.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    await main(['node', 'kiln', ...args]);
  } finally {
    process.stdout.write = writeOut;
    process.stderr.write = writeErr;
  }
  const exitCode = Number(process.exitCode ?? 0);
  process.exitCode = previousExitCode;
  return { stdout: out.join(''), stderr: err.join(''), exitCode };
}

/** The --json contract: the last stdout line is one JSON object. */
export function lastJson<T = Record<string, unknown>>(r: CliResult): T {
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}
