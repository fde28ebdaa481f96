// `npm run test:asan`: the sanitizer pass. Builds the addon and the C++ tests with AddressSanitizer
// and UndefinedBehaviorSanitizer (CMake option KILN_SANITIZE, one build folder: build-asan/, kept
// between runs so a rebuild is incremental), runs the C++ tests on every ISA path (best, avx2,
// scalar), then the TypeScript suites that exercise native code (test/asan/vitest.asan.config.ts)
// in Node with the ASan runtime preloaded and the sanitized addon loaded through KILN_ADDON_PATH.
// Any ASan or UBSan report aborts the process that hit it, which fails the run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = join(root, 'build-asan');
const started = Date.now();

function run(command, args, env = {}) {
  process.stdout.write(`> ${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}${command} ${args.join(' ')}\n`);
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error) {
    process.stderr.write(`test:asan: could not run ${command}: ${r.error.message}\n`);
    process.exit(1);
  }
  if (r.status !== 0) {
    process.stderr.write(`test:asan: ${command} ${r.signal ? `died of ${r.signal}` : `exited with ${r.status}`}\n`);
    process.exit(r.status || 1);
  }
}

function output(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

// The ASan runtime the compiler links against: Node itself is not instrumented, so the runtime
// must be loaded first (LD_PRELOAD) for the addon to load at all.
const compiler = process.env.CXX || 'c++';
const asanRuntime = output(compiler, ['-print-file-name=libasan.so']);
if (!asanRuntime.startsWith('/') || !existsSync(asanRuntime)) {
  process.stderr.write(`test:asan: ${compiler} has no AddressSanitizer runtime (libasan.so); install it (Debian: libasan8 comes with g++)\n`);
  process.exit(1);
}

const jobs = String(Math.max(1, availableParallelism()));
if (!existsSync(join(build, 'CMakeCache.txt'))) {
  run(process.execPath, [join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js'), 'configure', '-O', build, '--CDKILN_SANITIZE=ON']);
}
run('cmake', ['--build', build, '--target', 'kiln', 'kiln_native_tests', '--parallel', jobs]);

// halt_on_error: a UBSan report is fatal (the build also passes -fno-sanitize-recover);
// abort_on_error: the process dies of SIGABRT, which no test runner mistakes for a pass.
const sanitizerEnv = {
  ASAN_OPTIONS: 'abort_on_error=1:halt_on_error=1:strict_init_order=1:check_initialization_order=1',
  UBSAN_OPTIONS: 'halt_on_error=1:abort_on_error=1:print_stacktrace=1',
};
// Every test on the best ISA; then again on the avx2 and scalar tables (KILN_ISA), less the slow
// tests whose main() already walks every table the CPU has (the s8 GEMM and sparse tests, and parts
// of the others, run on the active table only).
// With arguments (`npm run test:asan -- test/unit/buffer-lifetime.test.ts`) only those vitest
// filters run, after the build.
const filters = process.argv.slice(2);
if (filters.length === 0) {
  run('ctest', ['--test-dir', build, '--output-on-failure', '--parallel', jobs], sanitizerEnv);
  for (const isa of ['avx2', 'scalar']) {
    run('ctest', ['--test-dir', build, '--output-on-failure', '--parallel', jobs, '-E', '^(dispatch|isa-switch|f32-gemm|sparse-conv)-test$'], { ...sanitizerEnv, KILN_ISA: isa });
  }
}

// Node and V8 leak on purpose at exit: leak checking is for the C++ tests above only.
const nodeEnv = {
  ...sanitizerEnv,
  ASAN_OPTIONS: `${sanitizerEnv.ASAN_OPTIONS}:detect_leaks=0`,
  LD_PRELOAD: [asanRuntime, process.env.LD_PRELOAD].filter(Boolean).join(':'),
  KILN_ADDON_PATH: join(build, 'Release', 'kiln.node'),
  KILN_SANITIZED: '1',
  // The loader fuzzers (test/fuzz, test/unit/onnx-fuzz.test.ts) run thousands of cases here.
  KILN_FUZZ_CASES: process.env.KILN_FUZZ_CASES || '3000',
};
run(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', join(root, 'test', 'asan', 'vitest.asan.config.ts'), ...filters], nodeEnv);
process.stdout.write(`test:asan: passed in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
