/** The stale-dist guard (test/globalSetup.ts) on throwaway trees with chosen mtimes. */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { distStaleness } from './distFreshness.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A tree with the given files, each with its mtime in seconds. */
function tree(files: Record<string, number>): string {
  const root = mkdtempSync(join(tmpdir(), 'dist-fresh-'));
  dirs.push(root);
  for (const [path, seconds] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, '');
    utimesSync(full, seconds, seconds);
  }
  return root;
}

describe('distStaleness', () => {
  it('is null when the newest dist/ file is at least as new as every .ts and .proto in src/', () => {
    expect(distStaleness(tree({ 'src/a.ts': 100, 'src/x/b.proto': 150, 'dist/app/a.js': 150 }))).toBeNull();
    // Any layout under dist/: only its newest file counts.
    expect(
      distStaleness(tree({ 'src/a.ts': 100, 'dist/old/z.js': 1, 'dist/net/deep/a.js': 200 })),
    ).toBeNull();
  });

  it('reports a source or schema edited after the build, however deep', () => {
    expect(distStaleness(tree({ 'src/a/b/c.ts': 300, 'dist/src/a/b/c.js': 200 }))).toMatch(
      /changed 100000 ms after/,
    );
    expect(
      distStaleness(tree({ 'src/a.ts': 100, 'src/p/chat.proto': 301, 'dist/a.js': 300 })),
    ).not.toBeNull();
  });

  it('ignores files the build does not read (READMEs)', () => {
    expect(distStaleness(tree({ 'src/a.ts': 100, 'src/README.md': 900, 'dist/a.js': 200 }))).toBeNull();
  });

  it('reports a missing dist/', () => {
    expect(distStaleness(tree({ 'src/a.ts': 100 }))).toBe('dist/ is missing');
  });
});
