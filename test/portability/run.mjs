#!/usr/bin/env node
// `npm run test:portability`: the package as users get it, on CPUs other than this one.
//  1. `npm pack` (its prepack builds the prebuilt binary, `npm run prebuild`, and checks that the
//     baseline objects hold no AVX instruction, native/tools/check-baseline-isa.mjs); the tarball must
//     hold prebuilds/linux-x64/@kiln-ml+kiln.node and no build/.
//  2. `npm install <tarball>` into an empty project with no compiler, make or python on the PATH
//     and Kiln's install script approved: node-gyp-build must find the prebuilt binary (compiling
//     would fail), and the installed files must be exactly the tarball's (so an npm that skips
//     install scripts, npm 11's default, gets the same working package).
//  3. A SeedCNN trained here (1 epoch), fp32 and int8, run on 8 MNIST digits through
//     `import('@kiln-ml/kiln')`: natively on every ISA path this CPU has, and under
//     `qemu-x86_64 -cpu Haswell` (AVX2, no AVX-512) and `-cpu qemu64` (plain x86-64, no AVX).
//     Emulated runs must pick avx2 / scalar, hit no illegal instruction, and match the native run
//     forced onto the same path (KILN_ISA): int8 logits bit for bit (the int8 kernels are exact on
//     every ISA), fp32 within 1e-5 of the largest logit, same top-1. And natively on Debian 11's
//     glibc 2.31 (native/tools/glibc-sysroot.mjs: its loader starts Node with its libraries), the
//     oldest glibc this machine can fetch, after checking the binary's symbol versions for 2.28.
//  4. The C++ kernel tests (build-native, baseline flags + per-ISA objects) under both CPU models
//     (QEMU_NATIVE_TESTS; the two slowest run natively only). With KILN_TEST_UNDER_QEMU set they
//     test the emulated model's own ISA level only and skip, counting them, the cases past a work
//     budget (native/test/test-util.h): QEMU's floating point is 100-250x slower than native on
//     some hosts. npm test runs every case natively on every level.
// Needs qemu-user (Debian: apt-get install qemu-user; .ci/run installs it). Prints one JSON
// summary line last; exits 1 on the first failed check.
//   node test/portability/run.mjs [--tarball file.tgz] [--skip-native-tests]
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SYSROOT_GLIBC, ensureSysroot, sysrootRunner } from '../../native/tools/glibc-sysroot.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const NAME = '@kiln-ml/kiln';
const PREBUILD = 'prebuilds/linux-x64/@kiln-ml+kiln.glibc.node';
/** qemu CPU models: one with AVX2 and no AVX-512, one with no AVX at all (SSE3 only). */
const CPUS = [
  { model: 'Haswell', isa: 'avx2' },
  { model: 'qemu64', isa: 'scalar' },
];
/**
 * The C++ test programs run under QEMU: every kernel family's tests on the emulated CPU's own
 * table (cases within the work budget). The others run natively only (npm test), being slower
 * emulated than their worth here:
 * f32-gemm-test (215 s under -cpu Haswell on an AMD EPYC host, over 600 s on an Intel Xeon VM; the
 * GEMM kernels also run in conv-test and plan-test) and
 * isa-switch-test (a thread stress test of setIsa, > 300 s emulated).
 */
const QEMU_NATIVE_TESTS = ['compare-test', 'conv-test', 'dispatch-test', 'glibc-floor-test', 'norm-test', 'plan-test', 's8-conv-test', 's8-gemm-test', 's8-sparse-test', 'sparse-conv-test', 'sparse-nm-test', 'sparse-test', 'thread-pool-test'];
const NATIVE_ONLY = ['f32-gemm-test', 'isa-switch-test'];
const args = process.argv.slice(2);
const option = (flag) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
const summary = { checks: [] };
const work = mkdtempSync(join(tmpdir(), 'kiln-portability-'));

function fail(message) {
  console.error(`portability: FAILED: ${message}`);
  console.error(`(work folder kept: ${work})`);
  console.log(JSON.stringify({ ok: false, ...summary }));
  process.exit(1);
}
function check(ok, what) {
  if (!ok) fail(what);
  summary.checks.push(what);
  console.error(`  ok  ${what}`);
}
function sh(command, argv, options = {}) {
  const started = Date.now();
  const r = spawnSync(command, argv, { encoding: 'utf8', maxBuffer: 1 << 28, ...options });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: (r.stderr ?? '').split('\n').filter((l) => !/TCG doesn't support requested feature/.test(l)).join('\n'), error: r.error, seconds: (Date.now() - started) / 1000 };
}
function must(r, what) {
  if (r.error || r.status !== 0) fail(`${what}: ${r.error?.message ?? `exit ${r.status} ${r.signal ?? ''}`}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r;
}
function lastJson(r) {
  return JSON.parse(r.stdout.trim().split('\n').pop());
}
function step(title) {
  console.error(`portability: ${title}`);
}

// --- 0. Tools ------------------------------------------------------------------------------
const qemuPath = sh('/bin/sh', ['-c', 'command -v qemu-x86_64']).stdout.trim();
const qemu = sh(qemuPath || 'qemu-x86_64', ['--version']);
if (!qemuPath || qemu.error) fail('qemu-x86_64 is not on the PATH: install qemu-user (apt-get install -y qemu-user; .ci/run does)');
summary.qemu = qemu.stdout.split('\n')[0];
if (process.platform !== 'linux' || process.arch !== 'x64') fail(`the prebuilt binary is linux-x64; this is ${process.platform}-${process.arch}`);

// --- 1. Pack --------------------------------------------------------------------------------
let tarball = option('--tarball');
if (!tarball) {
  step('npm pack (prepack: npm run prebuild + native/tools/check-baseline-isa.mjs; prepare: tsc)');
  const r = must(sh('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, env: { ...process.env, JOBS: String(availableParallelism()) } }), 'npm pack');
  summary.packSeconds = r.seconds;
  const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')));
  tarball = join(work, json[0].filename);
}
tarball = resolve(tarball);
const listing = must(sh('tar', ['-tzvf', tarball]), 'tar -t').stdout.split('\n').filter(Boolean);
const files = listing.map((l) => l.split(/\s+/).pop().replace(/^package\//, ''));
const prebuildLine = listing.find((l) => l.endsWith(`package/${PREBUILD}`));
check(prebuildLine !== undefined, `the tarball holds ${PREBUILD}`);
summary.prebuildBytes = Number(prebuildLine.split(/\s+/)[2]);
summary.tarballBytes = statSync(tarball).size;
// The C and C++ runtimes the prebuilt binary asks for, as README "Install" states them: glibc 2.28
// at most (Node 20's own floor; native/compat/glibc-floor.cc), no libstdc++ (linked in statically),
// only the C runtime's libraries, and every symbol it takes from them versioned (an unversioned one
// binds to whatever the running glibc has, or fails to load where it has none).
must(sh('tar', ['-xzf', tarball, '-C', work, `package/${PREBUILD}`]), 'tar -x the prebuild');
const prebuildPath = join(work, 'package', PREBUILD);
const dynamicSymbols = must(sh('objdump', ['-T', prebuildPath]), 'objdump -T the prebuild').stdout;
const versions = (prefix) => [...dynamicSymbols.matchAll(new RegExp(`\\b${prefix}_([0-9.]+)`, 'g'))].map((m) => m[1]);
const byVersion = (a, b) => { const x = a.split('.').map(Number), y = b.split('.').map(Number); for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0); return 0; };
summary.prebuildNeeds = { glibc: versions('GLIBC').sort(byVersion).pop(), glibcxx: versions('GLIBCXX').sort(byVersion).pop() ?? null };
check(byVersion(summary.prebuildNeeds.glibc, '2.28') <= 0, `the prebuild needs at most glibc 2.28, as README says (GLIBC_${summary.prebuildNeeds.glibc})`);
check(summary.prebuildNeeds.glibcxx === null && versions('CXXABI').length === 0, 'the prebuild needs no libstdc++ (no GLIBCXX_ or CXXABI_ symbol version)');
const needed = [...must(sh('readelf', ['-d', prebuildPath]), 'readelf -d the prebuild').stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
const C_RUNTIME = ['libc.so.6', 'libm.so.6', 'libpthread.so.0', 'libdl.so.2', 'libgcc_s.so.1', 'ld-linux-x86-64.so.2'];
summary.prebuildNeeded = needed;
check(needed.length > 0 && needed.every((lib) => C_RUNTIME.includes(lib)), `the prebuild links only the C runtime's libraries (${needed.join(', ')})`);
const unversioned = dynamicSymbols.split('\n').filter((l) => /\*UND\*/.test(l) && !/\bw\s+D/.test(l) && !/\((GLIBC|GCC)_[0-9.]+\)/.test(l)).map((l) => l.trim().split(/\s+/).pop()).filter((name) => !/^(napi|node_api)_/.test(name));
check(unversioned.length === 0, `every symbol the prebuild takes from the C runtime is versioned; the rest are Node-API's (unversioned: ${unversioned.join(', ') || 'none'})`);
const exported = dynamicSymbols.split('\n').filter((l) => /^[0-9a-f]{16}\s/.test(l) && !/\*UND\*/.test(l)).map((l) => l.trim().split(/\s+/).pop()).sort();
check(JSON.stringify(exported) === JSON.stringify(['napi_register_module_v1', 'node_api_module_get_api_version_v1']), `the prebuild exports Node-API's two entry points and nothing else (native/addon/exports.map; got ${exported.length}: ${exported.slice(0, 5).join(', ')})`);
const sections = must(sh('readelf', ['-S', '-W', prebuildPath]), 'readelf -S the prebuild').stdout;
check(sections.includes('.text') && !/\.symtab|\.debug_info/.test(sections), 'the prebuild is stripped (no .symtab, no debug info)');
check(!files.some((f) => f.startsWith('build/')), 'the tarball holds no build/ folder (nothing compiled here is shipped but the prebuild)');
check(files.includes('dist/src/index.js') && files.includes('bin/kiln.js'), 'the tarball holds dist/src/index.js and bin/kiln.js');

// --- 2. Install into an empty project, no compiler on the PATH ------------------------------
step('npm install <tarball> into an empty project, PATH = node, npm and sh only');
const bin = join(work, 'bin');
mkdirSync(bin);
symlinkSync(realpathSync(process.execPath), join(bin, 'node'));
const npmCli = realpathSync(must(sh('/bin/sh', ['-c', 'command -v npm']), 'command -v npm').stdout.trim());
symlinkSync(npmCli, join(bin, 'npm'));
// npm runs scripts with `sh`: a shell is on every system a package installs on; a compiler is not.
symlinkSync('/bin/sh', join(bin, 'sh'));
const env = { ...process.env, PATH: bin, npm_config_update_notifier: 'false' };
for (const key of Object.keys(env)) if (/^npm_(lifecycle|package|config_(prefix|globalconfig|userconfig)$)/.test(key) || key === 'INIT_CWD') delete env[key];
delete env.KILN_ISA;
delete env.KILN_ADDON_PATH;
const absent = ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'make', 'python3', 'python'];
for (const tool of absent) check(sh('/bin/sh', ['-c', `command -v ${tool}`], { env }).status !== 0, `${tool} is not on the install PATH`);
const app = join(work, 'app');
mkdirSync(app);
writeFileSync(
  join(app, 'package.json'),
  JSON.stringify({
    name: 'kiln-portability-app',
    private: true,
    type: 'module',
    // Kiln's own install script (node-gyp-build) approved, so it runs: with no compiler it passes
    // only by finding the prebuilt binary. onnxruntime-node's would download from nuget.org.
    allowScripts: { [NAME]: true, 'onnxruntime-node': false, protobufjs: false },
  }, null, 2),
);
const install = must(sh('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: app, env }), 'npm install of the tarball with no compiler');
summary.installSeconds = install.seconds;
check(/node-gyp-build/.test(install.stdout + install.stderr), "npm ran Kiln's install script (node-gyp-build) with no compiler on the PATH, and it passed");
const installed = join(app, 'node_modules', NAME);
const tree = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tree(join(dir, e.name)) : [relative(installed, join(dir, e.name))]));
const installedFiles = tree(installed).sort();
check(JSON.stringify(installedFiles) === JSON.stringify([...files].sort()), 'the installed package holds exactly the tarball files (the install script built nothing)');
check(existsSync(join(app, 'node_modules', '.bin', 'kiln')), 'the kiln command is installed (node_modules/.bin/kiln)');
const help = sh(join(app, 'node_modules', '.bin', 'kiln'), ['--help'], { cwd: app, env });
check(help.status === 0 && help.stdout.includes('Usage: kiln'), 'npx kiln --help runs from the installed package');

// --- 3. The model, natively and under qemu --------------------------------------------------
copyFileSync(join(ROOT, 'test/portability/run-model.mjs'), join(app, 'run-model.mjs'));
const models = join(work, 'models');
mkdirSync(models);
step('train + quantize a SeedCNN with the in-tree build (dist/), run it');
const inTree = lastJson(must(sh(process.execPath, [join(app, 'run-model.mjs'), pathToFileURL(join(ROOT, 'dist/src/index.js')).href, models, '--make'], { cwd: app, env: { ...env, PATH: process.env.PATH } }), 'in-tree model run'));
const runInstalled = (isa, prefix = []) => {
  const runEnv = isa ? { ...env, KILN_ISA: isa } : env;
  const argv = [...prefix, process.execPath, 'run-model.mjs', NAME, models];
  const r = sh(argv[0], argv.slice(1), { cwd: app, env: runEnv });
  const what = `${prefix.length ? prefix.join(' ') + ' ' : ''}node run-model.mjs ${NAME}${isa ? ` (KILN_ISA=${isa})` : ''}`;
  must(r, what);
  return { ...lastJson(r), seconds: r.seconds };
};
const top1 = (logits) => Array.from({ length: logits.length / 10 }, (_, i) => { const row = logits.slice(i * 10, i * 10 + 10); return row.indexOf(Math.max(...row)); });
const maxAbs = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
function same(a, b, what) {
  const scale = Math.max(...a.logits.fp32.map(Math.abs));
  const fp32Diff = maxAbs(a.logits.fp32, b.logits.fp32);
  const int8Equal = a.logits.int8.every((v, i) => Object.is(v, b.logits.int8[i]));
  check(int8Equal, `${what}: int8 logits bit-identical`);
  check(fp32Diff <= 1e-5 * scale && JSON.stringify(top1(a.logits.fp32)) === JSON.stringify(top1(b.logits.fp32)), `${what}: fp32 logits within 1e-5 of the largest (${fp32Diff.toExponential(2)} of ${scale.toFixed(2)}), same top-1`);
  return { fp32MaxAbsDiff: fp32Diff, fp32BitIdentical: fp32Diff === 0, int8BitIdentical: int8Equal };
}
step('the installed package, natively, on each ISA path of this CPU');
const native = { best: runInstalled(undefined) };
summary.nativeBestIsa = native.best.isa;
summary.comparisons = { 'installed vs in-tree (best ISA)': same(native.best, inTree, 'installed package vs in-tree build') };
check(top1(native.best.logits.fp32).filter((c, i) => c === native.best.labels[i]).length >= 6, `the trained SeedCNN classifies at least 6 of the 8 digits (${top1(native.best.logits.fp32).join(',')} vs ${native.best.labels.join(',')})`);
for (const { isa } of CPUS) {
  native[isa] = runInstalled(isa);
  check(native[isa].isa === isa, `KILN_ISA=${isa} natively runs on ${isa}`);
}
summary.runs = { [`native ${native.best.isa}`]: native.best.seconds };
step(`the installed package on Debian 11's glibc ${SYSROOT_GLIBC} (Node started by that glibc's loader, with its libraries only)`);
const { loader, libraryPath } = sysrootRunner(ensureSysroot());
const oldGlibc = runInstalled(undefined, [loader, '--library-path', libraryPath]);
summary.runs[`glibc ${oldGlibc.glibc}`] = oldGlibc.seconds;
check(oldGlibc.glibc === SYSROOT_GLIBC, `the run used glibc ${SYSROOT_GLIBC} (process.report says ${oldGlibc.glibc}; natively ${native.best.glibc})`);
summary.comparisons[`glibc ${SYSROOT_GLIBC} vs native`] = same(oldGlibc, native.best, `glibc ${SYSROOT_GLIBC} vs glibc ${native.best.glibc}`);
for (const { model, isa } of CPUS) {
  step(`qemu-x86_64 -cpu ${model}: the installed package (expects ${isa})`);
  const emulated = runInstalled(undefined, [qemuPath, '-cpu', model]);
  summary.runs[`qemu ${model}`] = emulated.seconds;
  check(emulated.bestIsa === isa && emulated.isa === isa, `under -cpu ${model} Kiln detects and uses ${isa} (got ${emulated.bestIsa}/${emulated.isa})`);
  summary.comparisons[`qemu ${model} vs native KILN_ISA=${isa}`] = same(emulated, native[isa], `-cpu ${model} vs native KILN_ISA=${isa}`);
}

// --- 4. The C++ kernel tests under qemu -----------------------------------------------------
if (!args.includes('--skip-native-tests')) {
  step('the C++ kernel tests (build-native) under qemu');
  const build = join(ROOT, 'build-native');
  must(sh('cmake', ['-S', ROOT, '-B', build, '-DKILN_ADDON=OFF', '-DCMAKE_BUILD_TYPE=Release']), 'cmake configure');
  must(sh('cmake', ['--build', build, '--target', 'kiln_native_tests', '--parallel', String(availableParallelism())]), 'cmake build of the native tests');
  const built = readdirSync(build).filter((f) => f.endsWith('-test') && statSync(join(build, f)).isFile());
  for (const test of [...QEMU_NATIVE_TESTS, ...NATIVE_ONLY]) check(built.includes(test), `build-native/${test} is built`);
  const unlisted = built.filter((t) => !QEMU_NATIVE_TESTS.includes(t) && !NATIVE_ONLY.includes(t));
  check(unlisted.length === 0, `every native test program is listed here, run under QEMU or said why not (unlisted: ${unlisted.join(', ') || 'none'})`);
  const tests = QEMU_NATIVE_TESTS;
  summary.nativeTests = {};
  for (const { model } of CPUS) {
    let seconds = 0;
    let skipped = 0;
    for (const test of tests) {
      // Guard pages off: QEMU 7.2 reads 16 bytes for a scalar FMA's memory operand (see
      // native/src/common/masked-load-avx2.h); and the one check its AVX2 gathers fail is skipped
      // (native/test/dispatch-test.cc). npm test runs the same programs natively with both.
      const r = sh(qemuPath, ['-cpu', model, join(build, test)], { cwd: build, env: { ...process.env, KILN_TEST_GUARD_PAGES: '0', KILN_TEST_UNDER_QEMU: '1' }, timeout: 600_000 });
      seconds += r.seconds;
      must(r, `qemu-x86_64 -cpu ${model} ${test}`);
      skipped += Number(/(\d+) cases skipped/.exec(r.stdout)?.[1] ?? 0);
    }
    summary.nativeTests[model] = { programs: tests.length, seconds: Math.round(seconds), casesOverBudget: skipped };
    check(true, `all ${tests.length} native test programs pass under -cpu ${model} (${Math.round(seconds)} s; ${skipped} cases over the emulation budget left to the native runs)`);
  }
}

rmSync(work, { recursive: true, force: true });
console.log(JSON.stringify({ ok: true, ...summary }));
