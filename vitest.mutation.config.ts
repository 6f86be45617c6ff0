/**
 * The Vitest config Stryker uses (scripts/mutation.mjs): only the unit tests of the module group
 * under mutation (MUTATION_TESTS, comma-separated), no service probes (those tests need none).
 */
import { defineConfig } from 'vitest/config';

const tests = (process.env.MUTATION_TESTS ?? '').split(',').filter((t) => t !== '');

export default defineConfig({
  test: {
    include: tests.length > 0 ? tests : ['test/net/Buffer.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
