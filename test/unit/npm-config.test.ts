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

  it('names every dependency that has an install script, so npm install warns about none', () => {
    // npm 11 runs no dependency script that allowScripts does not name, and warns for each; the
    // ones Kiln needs none of (esbuild's binary check, protobufjs 6's notice) are denied by name.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.hasInstallScript)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(withScripts.length).toBeGreaterThan(0);
    for (const name of withScripts) expect(Object.keys(pkg.allowScripts ?? {}), name).toContain(name);
  });

  it('npx kiln --help prints no npm warning', () => {
    expect(existsSync(join(ROOT, 'dist/src/cli/main.js')), 'dist/src/cli/main.js is missing: run `npm run build:ts`').toBe(true);
    const r = spawnSync('npm', ['exec', '--', 'kiln', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: kiln');
    expect(r.stderr).not.toMatch(/npm warn/i);
  });
});
