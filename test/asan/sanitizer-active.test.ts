/**
 * The sanitizer pass (npm run test:asan) must not pass by running unsanitized: with KILN_SANITIZED=1
 * (set by test/asan/run.mjs) the loaded addon must be the sanitized build, and a child process that
 * commits each class of bug through the addon's sanitizerProbe hook must die with the sanitizer's
 * report. Outside that pass (plain npm test) there is nothing to check and the tests are skipped.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { testHooks } from '../../src/binding.js';

const sanitized = process.env.KILN_SANITIZED === '1';
const bindingUrl = new URL('../../src/binding.ts', import.meta.url).href;
const register = fileURLToPath(new URL('../support/register-ts-source.mjs', import.meta.url));

/** Runs the probe `kind` in a fresh Node with this process's environment (ASan preloaded, sanitized addon). */
function probeInChild(kind: string): { status: number | null; signal: NodeJS.Signals | null; stderr: string } {
  const script = `const { testHooks } = await import(${JSON.stringify(bindingUrl)}); testHooks().sanitizerProbe(${JSON.stringify(kind)}); console.log('survived');`;
  const r = spawnSync(process.execPath, ['--import', register, '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, KILN_TEST_HOOKS: '1' }, timeout: 60_000 });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}

describe.skipIf(!sanitized)('the sanitizer build is the one under test', () => {
  it('the loaded addon has the sanitized-only probe', () => {
    expect(typeof (testHooks() as unknown as Record<string, unknown>).sanitizerProbe).toBe('function');
  });

  for (const [kind, report] of [
    // UBSan's object-size check sees this read before ASan does; either report is the sanitizer's.
    ['heap-buffer-overflow', /ERROR: AddressSanitizer: heap-buffer-overflow|runtime error: load of address \w+ with insufficient space/],
    ['heap-use-after-free', /ERROR: AddressSanitizer: heap-use-after-free/],
    ['signed-integer-overflow', /runtime error: signed integer overflow/],
  ] as const) {
    it(`a ${kind} in native code kills the process with the sanitizer's report`, () => {
      const r = probeInChild(kind);
      expect(r.stderr).toMatch(report);
      expect(r.stderr).toContain('test-hooks.cc');
      expect(r.stderr).not.toContain('survived');
      expect(r.signal ?? r.status).not.toBe(0);
    });
  }
});
