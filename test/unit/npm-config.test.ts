// npm configuration of the project: onnxruntime-node's install script is denied through
// package.json `allowScripts` (on linux-x64 it otherwise downloads the CUDA provider from
// api.nuget.org, which fails offline), and no project config key makes npm warn on every
// `npx kiln` (the old `.npmrc` key `onnxruntime-node-install=skip` did).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '../..');

describe('npm configuration', () => {
  it("denies onnxruntime-node's install script in package.json", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    expect(pkg.allowScripts?.['onnxruntime-node']).toBe(false);
  });

  it('npx kiln --help prints no npm warning', () => {
    expect(existsSync(join(ROOT, 'dist/src/cli/main.js')), 'dist/src/cli/main.js is missing: run `npm run build`').toBe(true);
    const r = spawnSync('npm', ['exec', '--', 'kiln', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: kiln');
    expect(r.stderr).not.toMatch(/npm warn/i);
  });
});
