import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { inlineBudgetFlops, shouldRunAsync } from '../../src/runtime/async-policy.js';
import { cpuInfo, setIsa, setNumThreads } from '../../src/system.js';

function readL2FromSysfs(): number | undefined {
  for (let i = 0; i < 8; i++) {
    const dir = `/sys/devices/system/cpu/cpu0/cache/index${i}`;
    if (!existsSync(dir)) return undefined;
    const level = readFileSync(`${dir}/level`, 'utf8').trim();
    const type = readFileSync(`${dir}/type`, 'utf8').trim();
    if (level !== '2' || type === 'Instruction') continue;
    const size = /^(\d+)K$/.exec(readFileSync(`${dir}/size`, 'utf8').trim());
    return size ? Number(size[1]) * 1024 : undefined;
  }
  return undefined;
}

describe('cpuInfo', () => {
  it('reports a supported active ISA', () => {
    const info = cpuInfo();
    expect(info.supportedIsas[0]).toBe('scalar');
    expect(info.supportedIsas).toContain(info.isa);
    expect(info.supportedIsas).toContain(info.bestIsa);
    expect(info.threads).toBeGreaterThanOrEqual(1);
  });

  it('reports the L2 that the kernel choices read, as the OS sees it where it tells', () => {
    const { l2CacheBytes } = cpuInfo();
    expect(Number.isInteger(l2CacheBytes)).toBe(true);
    expect(l2CacheBytes).toBeGreaterThanOrEqual(64 << 10);
    // Linux lists the caches CPUID describes; a VM or emulator that reports none gets the 1 MiB default.
    const sysfs = readL2FromSysfs();
    if (sysfs !== undefined) expect(l2CacheBytes).toBe(sysfs);
  });

  it('setIsa walks every supported path and refuses unknown ones', () => {
    const info = cpuInfo();
    for (const isa of info.supportedIsas) {
      setIsa(isa);
      expect(cpuInfo().isa).toBe(isa);
    }
    setIsa(info.isa);
    expect(() => setIsa('sse9' as never)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_KILN_INVALID_ARG' }));
    expect(() => setIsa(3 as never)).toThrow(TypeError);
  });

  it('setNumThreads validates its argument', () => {
    const before = cpuInfo().threads;
    setNumThreads(1);
    expect(cpuInfo().threads).toBe(1);
    setNumThreads(before);
    expect(cpuInfo().threads).toBe(before);
    expect(() => setNumThreads(-1)).toThrow(RangeError);
    expect(() => setNumThreads(1.5)).toThrow(TypeError);
    expect(() => setNumThreads(Number.NaN)).toThrow(TypeError);
  });

  it('setNumThreads warns when asked for more threads than the machine has, and not otherwise', () => {
    const most = availableParallelism();
    const warnings: { message: string; code?: string }[] = [];
    const emit = process.emitWarning;
    process.emitWarning = ((message: string, options?: { code?: string }) => void warnings.push({ message, code: options?.code })) as typeof process.emitWarning;
    try {
      setNumThreads(most);
      expect(warnings).toEqual([]);
      setNumThreads(most + 1);
      expect(warnings.length).toBe(1);
      expect(warnings[0].code).toBe('KILN_THREADS_OVERSUBSCRIBED');
      expect(warnings[0].message).toContain(`setNumThreads(${most + 1})`);
      expect(warnings[0].message).toContain(`${most} hardware threads`);
    } finally {
      process.emitWarning = emit;
      setNumThreads(0);
    }
  });

  it('honours KILN_ISA and explains a value it cannot use', () => {
    // A fresh process, because the override is read once at load. Loads the addon the same way
    // src/binding.ts does (KILN_ADDON_PATH or node-gyp-build from the package root).
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const script =
      "const p = process.env.KILN_ADDON_PATH; const a = p ? require(p) : require('node-gyp-build')(process.argv[1]);" +
      'console.log(JSON.stringify(a.cpuInfo()))';
    const run = (isa: string) => {
      const r = spawnSync(process.execPath, ['-e', script, root], { cwd: root, env: { ...process.env, KILN_ISA: isa }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { isa: string; bestIsa: string; isaOverrideError: string };
    };
    const scalar = run('scalar');
    expect(scalar.isa).toBe('scalar');
    expect(scalar.isaOverrideError).toBe('');
    const bogus = run('bogus');
    expect(bogus.isa).toBe(bogus.bestIsa);
    expect(bogus.isaOverrideError).toMatch(/KILN_ISA=bogus/);
  });
});

describe('shouldRunAsync', () => {
  it('keeps less work inline on slower ISA paths and follows setIsa', () => {
    const info = cpuInfo();
    try {
      setIsa('scalar');
      expect(inlineBudgetFlops()).toBe(2e6);
      expect(shouldRunAsync(4e6)).toBe(true);
      expect(shouldRunAsync(1e6)).toBe(false);
      for (const isa of info.supportedIsas.filter((i) => i !== 'scalar')) {
        setIsa(isa);
        expect(inlineBudgetFlops(), isa).toBeGreaterThan(2e6);
        expect(shouldRunAsync(4e6), isa).toBe(false);
        // Anything near a millisecond of work leaves the JS thread on every path.
        expect(shouldRunAsync(2e8), isa).toBe(true);
      }
    } finally {
      setIsa(info.isa);
    }
  });
});

describe('test hooks', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const exportsWith = (hooks: string): { keys: string[]; hooks: string[] } => {
    const script =
      "const dir = process.argv[1]; const a = process.env.KILN_ADDON_PATH ? require(process.env.KILN_ADDON_PATH) : require('node-gyp-build')(dir);" +
      'console.log(JSON.stringify({ keys: Object.keys(a), hooks: Object.keys(a.testHooks ?? {}) }))';
    const r = spawnSync(process.execPath, ['-e', script, root], { cwd: root, env: { ...process.env, KILN_TEST_HOOKS: hooks }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as { keys: string[]; hooks: string[] };
  };

  it('stay off the production addon unless KILN_TEST_HOOKS=1 is set as it loads', () => {
    const production = exportsWith('');
    expect(production.keys).not.toContain('testHooks');
    const hooks = ['threadPoolSlotsProbe', 'setS8GemmKernel', 's8GemmKernel', 'sparseChoiceMeasurements', 'inputLoans', 'forceHandoffPatience', 'setPollWindow', 'pollingThreads'];
    for (const hook of hooks) {
      expect(production.keys).not.toContain(hook);
    }
    expect(production.keys).toContain('runPlan');
    expect(exportsWith('1').hooks).toEqual(hooks);
  });
});
