import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Socket-heavy suites share two cores; running files in parallel with forks keeps them isolated.
    pool: 'forks',
    globalSetup: ['test/globalSetup.ts'],
  },
});
