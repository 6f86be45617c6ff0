import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository (package) root: the nearest directory above this module holding package.json.
 * The same answer whether this module runs compiled (dist/src/app/cluster) or as TypeScript
 * source under a test runner (src/app/cluster).
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the package root (no package.json above this module)');
    dir = up;
  }
}

/** The built chat-server binary (`npm run build` makes it); never the .ts source. */
export function chatServerBin(): string {
  return join(packageRoot(), 'dist/src/app/bin/chat-server.js');
}
