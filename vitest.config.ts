import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Socket-heavy suites share two cores; running files in parallel with forks keeps them isolated.
    pool: 'forks',
    // Two files at a time: on this 2-core machine the default (cores - 1) ran them one by one, and
    // most files wait on sockets, timers and child processes, not on the CPU (278 s against 530 s).
    maxWorkers: 2,
    globalSetup: ['test/globalSetup.ts'],
  },
});
