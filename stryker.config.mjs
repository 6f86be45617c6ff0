// @ts-check
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const typecheck = process.env.MUTATION_TYPECHECK === '1';

/**
 * StrykerJS base config. Run through `npm run test:mutation` (scripts/mutation.mjs), which sets
 * `mutate` and the tests (MUTATION_TESTS) per module group; see docs/MUTATION.md.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  // The TypeScript checker (and Stryker's tsconfig rewriting) call the TypeScript compiler API,
  // which TypeScript 7, this project's compiler, no longer ships. With `npm run test:mutation --
  // --typecheck` (MUTATION_TYPECHECK=1) they get TypeScript 5 (scripts/strykerTypescript5.mjs) and
  // mutants that do not compile are left out; without it no checker runs, the tsconfig path is
  // one that does not exist (nothing to rewrite: no extends or references), and such mutants run
  // like any other (the tests kill them or they are listed as survivors).
  checkers: typecheck ? ['typescript'] : [],
  tsconfigFile: typecheck ? 'tsconfig.json' : 'tsconfig.stryker-none.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  concurrency: Number(process.env.MUTATION_CONCURRENCY ?? 2),
  timeoutMS: 10_000,
  timeoutFactor: 2.5,
  reporters: ['clear-text', 'json', 'progress-append-only'],
  jsonReporter: { fileName: process.env.MUTATION_REPORT ?? 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0, reportScoreTable: true },
  ignorePatterns: ['dist', 'bench', 'data', 'coverage', 'reports', '.stryker-tmp', '*.log'],
  // Outside the work tree: Biome, tsc and Vitest must not see the sandboxes while they exist.
  tempDirName: join(tmpdir(), `muduo-ts-stryker-${process.pid}`),
  cleanTempDir: 'always',
  disableTypeChecks: 'src/**/*.ts',
  thresholds: { high: 90, low: 80, break: null },
};
