// `import 'kiln'` must not load onnxruntime-node: only the functions that run ORT (the comparisons,
// the benchmark) import it, on first call (src/onnx/onnxruntime.ts). Whether ORT is loaded is read
// where it shows, in a separate `node` process's /proc/self/maps (ORT's shared libraries mapped or
// not); vitest's own worker cannot tell, as other test files in it may have loaded ORT already.
// The child runs the TypeScript sources through test/support/register-ts-source.mjs, so it checks
// the code as it is now, not a dist/ build that may be stale.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kiln-ort-lazy-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** ORT's native pieces: libonnxruntime.so.* and the N-API binding that links it. */
const ORT_LIBRARY = /libonnxruntime[^/\s]*\.so|onnxruntime_binding\.node/;

const probe = `
import { readFileSync } from 'node:fs';
const ortMapped = () => [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => ${ORT_LIBRARY}.test(l)).map((l) => l.split(/\\s+/).pop()))];
const seen = {};
const kiln = await import(${JSON.stringify(pathToFileURL(join(root, 'src/index.ts')).href)});
seen.afterImportKiln = ortMapped();
await import(${JSON.stringify(pathToFileURL(join(root, 'src/cli/main.ts')).href)});
seen.afterImportCli = ortMapped();
const model = new kiln.nn.Sequential(new kiln.nn.Linear(4, 2));
const result = await kiln.onnx.compareWithOnnxRuntime(model, 1, { inputShape: [4] });
seen.afterCompare = ortMapped();
seen.relL2 = result.outputs[0].relL2;
console.log(JSON.stringify(seen));
`;

describe('onnxruntime-node is loaded on demand', () => {
  // /proc/self/maps is Linux's; elsewhere there is nothing to read.
  it.runIf(process.platform === 'linux')("import 'kiln' (and the CLI) maps no onnxruntime library; compareWithOnnxRuntime then does", () => {
    const script = join(dir, 'probe.mjs');
    writeFileSync(script, probe);
    const r = spawnSync(process.execPath, ['--import', join(root, 'test/support/register-ts-source.mjs'), script], { cwd: root, encoding: 'utf8', timeout: 110_000 });
    expect(r.status, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split('\n').pop()!) as { afterImportKiln: string[]; afterImportCli: string[]; afterCompare: string[]; relL2: number };
    expect(seen.afterImportKiln).toEqual([]);
    expect(seen.afterImportCli).toEqual([]);
    // The probe sees ORT once it is loaded: the two checks above can fail.
    expect(seen.afterCompare.length).toBeGreaterThan(0);
    expect(seen.relL2).toBeLessThanOrEqual(1e-6);
  }, 120_000);
});
