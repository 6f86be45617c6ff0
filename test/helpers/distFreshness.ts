/**
 * The e2e suites spawn the compiled server from dist/: a dist/ older than src/ would test stale
 * code and pass. Compares the newest source file with the newest file anywhere under dist/ (the
 * layout under dist/ may change; a build rewrites every output, so its newest file is its time).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newestMtime(dir: string, counts: (name: string) => boolean): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, counts));
    else if (counts(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** What the build compiles or copies: TypeScript and .proto schemas (not READMEs). */
const isBuildInput = (name: string): boolean => name.endsWith('.ts') || name.endsWith('.proto');

/** Why `root`'s dist/ cannot be trusted, or null when it is at least as new as every build input in src/. */
export function distStaleness(root: string): string | null {
  const dist = join(root, 'dist');
  if (!existsSync(dist)) return 'dist/ is missing';
  const built = newestMtime(dist, () => true);
  const edited = newestMtime(join(root, 'src'), isBuildInput);
  return edited > built ? `src/ was changed ${Math.round(edited - built)} ms after the last build` : null;
}

/** Builds when dist/ is stale; throws when it still is (the build failed). */
export function ensureFreshDist(root: string): void {
  const stale = distStaleness(root);
  if (stale === null) return;
  console.log(`test setup: ${stale}: running npm run build`);
  const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  const still = distStaleness(root);
  if (build.status !== 0 || still !== null) {
    throw new Error(
      `dist/ is older than src/ (${still ?? stale}) and npm run build failed: the end-to-end tests would run stale code`,
    );
  }
}
