import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // The addon registers its test hooks (native/addon/test-hooks.cc) only when this is set.
    env: { KILN_TEST_HOOKS: '1' },
    testTimeout: 120_000,
    hookTimeout: 300_000,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
