// The suites `npm run test:asan` (test/asan/run.mjs) runs against the sanitized addon: the ones
// that drive native code (kernels, plans and sessions, the loaders and their fuzzers, the
// buffer-lifetime cases of a buffer freed under a running job) rather than the MNIST training and
// CLI tests, which add time but no native path these do not already take.
import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: [
      'test/asan/**/*.test.ts',
      'test/fuzz/**/*.test.ts',
      'test/kernels/**/*.test.ts',
      'test/unit/buffer-lifetime.test.ts',
      'test/unit/bound-inputs.test.ts',
      'test/unit/edge-*.test.ts',
      'test/unit/input-shape.test.ts',
      'test/unit/isa-switch.test.ts',
      'test/unit/kiln-file*.test.ts',
      'test/unit/model-io.test.ts',
      'test/unit/quant-model-io.test.ts',
      'test/unit/onnx-import.test.ts',
      'test/unit/onnx-fuzz.test.ts',
      'test/unit/onnx-int8-import.test.ts',
      'test/unit/plan.test.ts',
      // Every convolution path with a fused post function and a residual read at each piece's offset.
      'test/unit/runtime-conv-activation.test.ts',
      'test/unit/session*.test.ts',
      'test/unit/runtime-int8*.test.ts',
      'test/unit/quant-ptq-lookup.test.ts',
      // AvgPoolU8's windows clipped by padding and ceil_mode overhang, on odd shapes.
      'test/unit/quant-ptq-avgpool.test.ts',
      'test/unit/quant-ptq-channels-last.test.ts',
      'test/unit/s8-sparse-plan.test.ts',
      'test/unit/sparse-*.test.ts',
    ],
    pool: 'forks',
    // gc(): test/unit/buffer-lifetime.test.ts collects the memory it takes away from a running job,
    // so a job still reading it is a heap-use-after-free the sanitizer reports, not just garbage.
    poolOptions: { forks: { execArgv: ['--expose-gc'] } },
    // The addon registers its test hooks (native/addon/test-hooks.cc) only when this is set. The
    // sanitizer settings (LD_PRELOAD, ASAN_OPTIONS, KILN_ADDON_PATH) come from run.mjs's environment,
    // which the forks inherit.
    env: { KILN_TEST_HOOKS: '1' },
    // Sanitized native code runs several times slower than the release build.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
