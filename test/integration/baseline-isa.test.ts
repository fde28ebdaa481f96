// The addon's baseline is plain x86-64 (README "CPU dispatch"): native/tools/check-baseline-isa.mjs
// disassembles the objects node-gyp linked build/Release/kiln.node from (npm install built them)
// and fails on an AVX instruction outside the per-ISA units, or on an inline function defined in
// units of different flags. `npm pack` runs the same check on the objects of the prebuilt binary.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'kiln-baseline-isa-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function runCheck(release: string) {
  return spawnSync(process.execPath, [join(ROOT, 'native/tools/check-baseline-isa.mjs'), release], { encoding: 'utf8', timeout: 240_000 });
}

/** A build/Release look-alike: one object per group, compiled from `sources[group]` with that group's flags. */
function fakeRelease(name: string, sources: Record<string, string>): string {
  const flags: Record<string, string[]> = { kiln: [], kiln_avx2: ['-mavx2', '-mfma'], kiln_avx512: ['-mavx512f', '-mavx512bw'], kiln_avx512vnni: ['-mavx512f', '-mavx512vnni'] };
  const release = join(work, name);
  for (const [target, extra] of Object.entries(flags)) {
    const dir = join(release, 'obj.target', target);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'unit.cc'), sources[target]);
    const r = spawnSync('g++', ['-O2', '-c', ...extra, join(dir, 'unit.cc'), '-o', join(dir, 'unit.o')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  }
  return release;
}

const SUM = (suffix: string) => `#include <immintrin.h>\nfloat sum_${suffix}(const float* p, int n) { float s = 0; for (int i = 0; i < n; ++i) s += p[i] * p[i]; return s; }\n`;
const AVX2 = `#include <immintrin.h>\n__m256 twice(__m256 v) { return _mm256_add_ps(v, v); }\n`;
const AVX512 = `#include <immintrin.h>\n__m512 twice512(__m512 v) { return _mm512_add_ps(v, v); }\n`;

describe('baseline ISA of the addon', () => {
  it('baseline objects hold no AVX instruction; no weak function crosses ISA flags; each ISA group holds its own', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'native/tools/check-baseline-isa.mjs'), join(ROOT, 'build/Release')], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ok: boolean; groups: Record<string, { objects: number; avxInstructions: number }> };
    expect(summary.ok).toBe(true);
    expect(summary.groups.baseline.objects).toBeGreaterThan(50);
    expect(summary.groups.baseline.avxInstructions).toBe(0);
    for (const isa of ['avx2', 'avx512', 'avx512vnni']) expect(summary.groups[isa].avxInstructions, isa).toBeGreaterThan(0);
  }, 300_000);

  it('fails on an AVX instruction in a baseline object, naming the object and function', () => {
    const release = fakeRelease('avx-in-baseline', {
      kiln: `${SUM('base')}__attribute__((target("avx2"))) void add8(float* p) { _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p))); }\n`,
      kiln_avx2: AVX2, kiln_avx512: AVX512, kiln_avx512vnni: AVX512,
    });
    const r = runCheck(release);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/obj\.target\/kiln\/unit\.o \(baseline flags\) holds \d+ AVX instructions, e\.g\.\n\s+add8\(float\*\): v/);
  });

  it('fails on an inline function defined both in an AVX-512 unit and in a baseline one', () => {
    const shared = 'inline __attribute__((noinline)) float dot(const float* a, const float* b, int n) { float s = 0; for (int i = 0; i < n; ++i) s += a[i] * b[i]; return s; }\n';
    const release = fakeRelease('odr-trap', {
      kiln: `${shared}float use_base(const float* a) { return dot(a, a, 64); }\n`,
      kiln_avx2: AVX2,
      kiln_avx512: `#include <immintrin.h>\n${shared}float use_512(const float* a) { return dot(a, a, 64); }\n${AVX512}`,
      kiln_avx512vnni: AVX512,
    });
    const r = runCheck(release);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/weak function _Z3dotPKfS0_i is defined in obj\.target\/kiln_avx512\/unit\.o \(avx512 flags\) and in obj\.target\/kiln\/unit\.o \(baseline flags\)/);
    expect(r.stderr).not.toContain('(baseline flags) holds');
  });
});
