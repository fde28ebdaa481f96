// The addon loader (src/binding.ts) as a user meets it when it fails: one ERR_KILN_NATIVE_LOAD
// error listing every file it tried with that file's error, the platform, libc and Node-API it
// detected, the prebuilt platforms and how to build from source. Each case loads binding.ts in a
// fresh `node` process (the addon loads once per process), from a temporary copy of the package
// where the case needs files of its own (a broken source build, a broken or missing prebuild).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { nativeLoadMessage } from '../../src/native-load.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOOKS = join(ROOT, 'test/support/register-ts-source.mjs');
const work = mkdtempSync(join(tmpdir(), 'kiln-native-load-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const PREBUILD = join('prebuilds', `${process.platform}-${process.arch}`, '@kiln-ml+kiln.glibc.node');

interface Outcome {
  code?: string;
  message?: string;
  isa?: string;
}

/** Imports <root>/src/binding.ts in a child process: the error's code and message, or the ISA of the addon it loaded. */
function loadFrom(root: string, env: Record<string, string> = {}): Outcome {
  const script =
    `try { const b = await import(${JSON.stringify(pathToFileURL(join(root, 'src/binding.ts')).href)}); ` +
    'console.log(JSON.stringify({ isa: b.native.cpuInfo().isa })); } ' +
    'catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }';
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('KILN_ADDON_PATH' in env)) delete childEnv.KILN_ADDON_PATH;
  const r = spawnSync(process.execPath, ['--import', HOOKS, '--input-type=module', '-e', script], { cwd: root, env: childEnv, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Outcome;
}

/** A copy of the package's loader (src/binding.ts and what it imports) with its own build/ and prebuilds/. */
function packageCopy(name: string, files: { sourceBuild?: 'broken'; prebuild?: 'broken' | 'real' }): string {
  const root = join(work, name);
  mkdirSync(join(root, 'src'), { recursive: true });
  for (const f of ['binding.ts', 'errors.ts', 'native-load.ts']) copyFileSync(join(ROOT, 'src', f), join(root, 'src', f));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: '@kiln-ml/kiln', type: 'module' }));
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  if (files.sourceBuild) {
    mkdirSync(join(root, 'build/Release'), { recursive: true });
    writeFileSync(join(root, 'build/Release/kiln.node'), 'not an ELF file');
  }
  if (files.prebuild) {
    mkdirSync(join(root, PREBUILD, '..'), { recursive: true });
    if (files.prebuild === 'broken') writeFileSync(join(root, PREBUILD), 'not an ELF file either');
    else copyFileSync((createRequire(import.meta.url)('node-gyp-build') as { resolve(dir: string): string }).resolve(ROOT), join(root, PREBUILD));
  }
  return root;
}

/** What every failure message says besides its attempts. */
function expectGuidance(message: string): void {
  expect(message).toContain(`Detected: ${process.platform}-${process.arch}, `);
  expect(message).toContain(`Node ${process.version} (Node-API ${process.versions.napi}, ABI ${process.versions.modules})`);
  if (process.platform === 'linux') expect(message).toMatch(/, (glibc \d+\.\d+|musl|libc unknown), /);
  expect(message).toContain('Prebuilt binaries ship for linux-x64 with glibc');
  expect(message).toContain('python3, make and a C++17 compiler');
  expect(message).toContain('npm install-scripts approve @kiln-ml/kiln');
  expect(message).toContain('npm rebuild @kiln-ml/kiln');
}

describe('native addon loader', () => {
  it('KILN_ADDON_PATH naming a file that is no addon: only that file is tried, and named with its error', () => {
    const bogus = join(work, 'bogus.node');
    writeFileSync(bogus, 'not an ELF file');
    const r = loadFrom(ROOT, { KILN_ADDON_PATH: bogus });
    expect(r.code).toBe('ERR_KILN_NATIVE_LOAD');
    expect(r.message).toMatch(new RegExp(`Tried:\\n  1\\. KILN_ADDON_PATH ${bogus.replace(/[.+]/g, '\\$&')}: .*(invalid ELF header|too short)`));
    expect(r.message).not.toContain('  2. ');
    expectGuidance(r.message!);
  });

  it('a broken source build and a broken prebuild: both tried, source build first, each with its error', () => {
    const root = packageCopy('both-broken', { sourceBuild: 'broken', prebuild: 'broken' });
    const r = loadFrom(root);
    expect(r.code).toBe('ERR_KILN_NATIVE_LOAD');
    expect(r.message).toContain(`1. source build ${join(root, 'build/Release/kiln.node')}: `);
    expect(r.message).toContain(`2. prebuilt binary ${join(root, PREBUILD)}: `);
    expect(r.message!.match(/invalid ELF header|file too short/g)?.length).toBe(2);
    expectGuidance(r.message!);
  });

  it('no build at all: node-gyp-build says what it looked for', () => {
    const r = loadFrom(packageCopy('none', {}));
    expect(r.code).toBe('ERR_KILN_NATIVE_LOAD');
    expect(r.message).toMatch(/1\. node-gyp-build: No native build was found for platform=\w+ arch=\w+/);
    expectGuidance(r.message!);
  });

  it('a broken source build falls back to a working prebuilt binary', () => {
    const r = loadFrom(packageCopy('fallback', { sourceBuild: 'broken', prebuild: 'real' }));
    expect(r.code).toBeUndefined();
    expect(r.isa).toMatch(/^(scalar|avx2|avx512|avx512vnni)$/);
  });

  it('on musl (Alpine) says the prebuilt binary needs glibc and how to build there', () => {
    const message = nativeLoadMessage([{ kind: 'prebuilt binary', path: '/x.node', error: 'Error relocating /x.node: __memcpy_chk: symbol not found' }], '/pkg', { family: 'musl' });
    expect(message).toContain('linux-x64, musl, Node');
    expect(message).toContain('This is a musl system (Alpine): the linux-x64 prebuilt binary needs glibc');
    expect(message).toContain('apk add build-base python3');
    expect(nativeLoadMessage([], '/pkg', { family: 'glibc', version: '2.36' })).not.toContain('musl system');
  });

  it('on a glibc older than the prebuilt binary needs says so', () => {
    const attempt = [{ kind: 'prebuilt binary', path: '/x.node', error: "version `GLIBC_2.28' not found" }];
    expect(nativeLoadMessage(attempt, '/pkg', { family: 'glibc', version: '2.27' })).toContain('This glibc (2.27) is older than the 2.28 the prebuilt binary needs');
    for (const version of ['2.28', '2.31', '2.36', '3.0']) expect(nativeLoadMessage(attempt, '/pkg', { family: 'glibc', version })).not.toContain('is older than');
  });
});
