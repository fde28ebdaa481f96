// `npm test` step: builds the C++ test programs of native/test from the same source list as the
// addon (native/sources.json through CMakeLists.txt) and runs them with ctest, so a failing
// native check fails `npm test` and CI. Incremental: build-native/ is kept between runs.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = join(root, 'build-native');

function step(command, args) {
  process.stdout.write(`> ${command} ${args.join(' ')}\n`);
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`native tests: could not run ${command}: ${r.error.message}\n`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const jobs = String(Math.max(1, availableParallelism()));
step('cmake', ['-S', root, '-B', build, '-DKILN_ADDON=OFF', '-DCMAKE_BUILD_TYPE=Release']);
step('cmake', ['--build', build, '--target', 'kiln_native_tests', '--parallel', jobs]);
step('ctest', ['--test-dir', build, '--output-on-failure']);
