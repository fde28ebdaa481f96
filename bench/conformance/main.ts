/**
 * `npm run conformance -- --onnx-dir <onnx checkout>`: runs the ONNX backend node tests through
 * Kiln's InferenceSession and writes bench/results/conformance.{json,md}.
 *
 *   npm run conformance -- --onnx-dir /work/onnx-1.23.0                  # the whole suite
 *   npm run conformance -- --onnx-dir /work/onnx-1.23.0 --filter '^test_conv'  # some tests
 *
 * Options: --jobs N (worker processes, default 2), --timeout S (seconds per test, default 60),
 * --out DIR (default bench/results). A filtered run writes conformance-filtered.* so it never
 * replaces the whole-suite report.
 *
 * The tests are not shipped with Kiln: take them from an onnx source tree, e.g. onnx 1.23.0, the
 * last release that has them in its tree (upstream commit a8f77b5b9 removed them):
 *   git clone https://github.com/onnx/onnx && git -C onnx archive 6be0677fc22e onnx/backend/test/data/node | tar -x -C /work/onnx-1.23.0
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { discoverNodeTests } from './discover.js';
import { runInWorkers } from './pool.js';
import { countOutcomes, writeReport, type TestRecord } from './report.js';
import { inAcceptanceSubset } from './subset.js';

interface Args {
  onnxDir: string;
  filter?: string;
  jobs: number;
  timeoutS: number;
  out?: string;
}

const USAGE = 'usage: npm run conformance -- --onnx-dir <onnx checkout or its onnx/backend/test/data/node> [--filter <regex>] [--jobs N] [--timeout S] [--out DIR]';

function parseArgs(argv: string[]): Args {
  const args: Partial<Args> = { jobs: 2, timeoutS: 60 };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    const need = (): string => {
      if (value === undefined) throw new Error(`${argv[i]} needs a value\n${USAGE}`);
      i++;
      return value;
    };
    const positive = (text: string): number => {
      const n = Number(text);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${argv[i - 1]} needs a positive number but received ${text}\n${USAGE}`);
      return n;
    };
    switch (argv[i]) {
      case '--onnx-dir': args.onnxDir = need(); break;
      case '--filter': args.filter = need(); break;
      case '--jobs': args.jobs = Math.floor(positive(need())); break;
      case '--timeout': args.timeoutS = positive(need()); break;
      case '--out': args.out = need(); break;
      default: throw new Error(`Unknown argument ${argv[i]}\n${USAGE}`);
    }
  }
  if (args.onnxDir === undefined) throw new Error(`--onnx-dir is required\n${USAGE}`);
  return args as Args;
}

/** The repository root: the nearest folder above this module holding package.json. */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

function gitCommit(root: string): string | undefined {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = repositoryRoot();
  const tests = discoverNodeTests(resolve(args.onnxDir), args.filter === undefined ? undefined : new RegExp(args.filter));
  const inSubset = tests.filter((t) => inAcceptanceSubset(t.op)).length;
  process.stdout.write(`${tests.length} node tests (${inSubset} in the acceptance subset), ${args.jobs} worker(s)\n`);
  const started = performance.now();
  let done = 0;
  const outcomes = await runInWorkers(tests, {
    jobs: args.jobs,
    timeoutMs: args.timeoutS * 1000,
    onResult: (test, outcome) => {
      done++;
      if (outcome.category === 'fail' || outcome.category === 'crash') process.stdout.write(`  ${outcome.category}: ${test.name}: ${outcome.message}\n`);
      if (done % 100 === 0 || done === tests.length) process.stdout.write(`  ${done}/${tests.length}\n`);
    },
  });
  const records: TestRecord[] = tests.map((t, i) => ({ name: t.name, op: t.op, ...outcomes[i]! }));
  const { json, markdown } = writeReport(args.out ?? join(root, 'bench', 'results'), records, {
    date: new Date().toISOString(),
    kilnCommit: gitCommit(root),
    onnxDir: args.onnxDir,
    filter: args.filter,
    jobs: args.jobs,
    timeoutMs: args.timeoutS * 1000,
    seconds: (performance.now() - started) / 1000,
  }, args.filter === undefined ? 'conformance' : 'conformance-filtered');
  const c = countOutcomes(records);
  const s = countOutcomes(records.filter((r) => inAcceptanceSubset(r.op)));
  process.stdout.write(`whole suite: ${c.tests} tests, ${c.pass} pass, ${c.fail} fail, ${c.error} error, ${c.unsupported} unsupported, ${c.crash} crash\n`);
  process.stdout.write(`acceptance subset: ${s.tests} tests, ${s.pass} pass, ${s.fail} fail, ${s.error} error, ${s.unsupported} unsupported, ${s.crash} crash\n`);
  process.stdout.write(`wrote ${json} and ${markdown}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
