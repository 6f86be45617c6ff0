// Fails when `npm install` would rewrite package-lock.json (e.g. a bin or dependency added to
// package.json but not to the lock), so a fresh clone stays clean after the README's first command.
// Runs npm on copies in a temporary directory: the working tree is never touched.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'muduo-ts-lock-'));
try {
  copyFileSync('package.json', join(dir, 'package.json'));
  copyFileSync('package-lock.json', join(dir, 'package-lock.json'));
  execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const before = readFileSync('package-lock.json', 'utf8');
  const after = readFileSync(join(dir, 'package-lock.json'), 'utf8');
  if (before !== after) {
    console.error('package-lock.json is out of date: `npm install` would change it. Run `npm install` and commit the lock.');
    process.exit(1);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
