// The README as a new user runs it: every `npx kiln` line of its sh blocks, in order, in one empty
// folder, each using only the files the lines above it wrote (and the repository files FROM_CLONE
// names, copied in at their paths); then its TypeScript examples, run
// against the same folder. Only speed-only flags are changed so the walk fits in CI: `--epochs 1`
// for training (not for `prune --no-finetune`, which trains nothing and refuses it), small
// batch/thread/time settings for `bench`, `epochs: 1` in the TS example.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from './run-cli.js';

const ROOT = resolve(__dirname, '../..');
/**
 * Files of the repository that README commands name by their path in a clone (a sample run record
 * for `kiln report`); the walk copies them into its folder at the same path.
 */
const FROM_CLONE = ['bench/results/example-run.json', 'recipes/mnist-half-80-int8.json'];
/** sh lines of the README that are not `npx kiln` commands (the walk runs in-process, not through npm). */
const NOT_KILN = [
  /^npm (install|test|run bench|run conformance|run prebuild|run test:types|run test:native|run test:portability|pack|rebuild)\b/, /^npx vitest run /, /^npx (node-gyp|cmake-js) /, /^cmake /, /^KILN_ISA=\w+ npm test$/,
  // The sanitizer pass, whole or one suite (README "Sanitizers and fuzzing").
  /^npm run test:asan( -- \S+)*$/,
  // Fetching the ONNX node tests for `npm run conformance` (network; not part of the walk).
  /^git (clone|-C) /, /^mkdir /,
  // Exporting torchvision models (needs PyTorch) and comparing them (bench/real-models.ts).
  /^python3 bench\/models\//, /^npx tsc -p tsconfig\.json && node dist\/bench\//,
];

interface Block {
  lang: string;
  body: string;
}

function blocks(markdown: string): Block[] {
  return [...markdown.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], body: m[2] }));
}

/** The `npx kiln` argument lists of the README's sh blocks, in order, comments dropped. */
export function readmeCommands(markdown: string): string[][] {
  const commands: string[][] = [];
  for (const block of blocks(markdown).filter((b) => b.lang === 'sh')) {
    for (const raw of block.body.split('\n')) {
      const line = raw.replace(/\s+#.*$/, '').trim();
      if (line === '') continue;
      if (line.startsWith('npx kiln ')) commands.push(line.slice('npx kiln '.length).split(/\s+/));
      else if (!NOT_KILN.some((re) => re.test(line))) throw new Error(`README sh line the walk does not know how to run: ${line}`);
    }
  }
  return commands;
}

/** Speed-only changes: fewer epochs, a short bench. Nothing that changes what a command does. */
function fast(args: string[]): string[] {
  const out = args.slice();
  const set = (flag: string, value: string) => {
    const i = out.indexOf(flag);
    if (i >= 0) out[i + 1] = value;
    else out.push(flag, value);
  };
  if (out[0] === 'train' || out[0] === 'distill' || out.includes('--qat') || (out[0] === 'prune' && !out.includes('--analyze') && !out.includes('--no-finetune'))) set('--epochs', '1');
  if (out[0] === 'bench') {
    set('--batches', '1,8');
    set('--thread-counts', '1');
    set('--min-ms', '20');
  }
  return out;
}

let dir = '';
let cwd = '';
let readme = '';

beforeAll(async () => {
  readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  dir = await mkdtemp(join(tmpdir(), 'kiln-readme-'));
  for (const file of FROM_CLONE) {
    await mkdir(dirname(join(dir, file)), { recursive: true });
    await copyFile(join(ROOT, file), join(dir, file));
  }
  cwd = process.cwd();
  process.chdir(dir);
});

afterAll(async () => {
  process.chdir(cwd);
  await rm(dir, { recursive: true, force: true });
});

describe('README', () => {
  it('every npx kiln command runs as written, in order, on the files the earlier ones wrote', async () => {
    const commands = readmeCommands(readme);
    expect(commands.length).toBeGreaterThanOrEqual(15);
    for (const args of commands) {
      const run = fast(args);
      const r = await runCli(...run);
      expect(r.exitCode, `npx kiln ${run.join(' ')}\n${r.stderr}${r.stdout}`).toBe(0);
    }
  }, 300_000);

  it('the TypeScript examples run against the files the commands wrote', async () => {
    const ts = blocks(readme).filter((b) => b.lang === 'ts');
    expect(ts.length).toBe(5);
    const index = pathToFileURL(join(ROOT, 'src/index.ts')).href;
    // Each block's `import { ... } from '@kiln-ml/kiln'` (the published name) becomes a destructuring of the package; the later
    // blocks run in their own scopes (they import some names again) and see the first one's values.
    const body = ts.map((b, i) => {
      const code = b.body
        .replace(/^import \{([^}]*)\} from '@kiln-ml\/kiln';$/m, 'const {$1} = kiln;')
        .replace(/epochs: \d+,/g, 'epochs: 1,');
      return i === 0 ? code : `{\n${code}\n}`;
    });
    const file = join(dir, 'readme-example.ts');
    await writeFile(file, `import * as kiln from '${index}';\nconst console = { log: () => {}, table: () => {} };\n${body.join('\n')}\nexport const ran = true;\n`);
    const mod = (await import(pathToFileURL(file).href)) as { ran: boolean };
    expect(mod.ran).toBe(true);
  }, 120_000);
});
