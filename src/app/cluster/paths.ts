import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository (package) root: the nearest directory above this module holding package.json.
 * The same answer whether this module runs compiled (dist/app/cluster, or build/src/app/cluster
 * for the benches) or as TypeScript source under a test runner (src/app/cluster).
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

/**
 * The package's build output: `npm run build` compiles src/ into it with src/ stripped
 * (src/net -> dist/net, src/rpc -> dist/rpc, src/app -> dist/app), the layout package.json's
 * exports and bins point at.
 */
export const DIST_DIR_NAME = 'dist';

/** A file of the build, named by its path under src/ (e.g. `app/bin/chat-server.js`). */
export function distPath(pathUnderSrc: string): string {
  return join(packageRoot(), DIST_DIR_NAME, pathUnderSrc);
}

/** The built chat-server binary (`npm run build` makes it); never the .ts source. */
export function chatServerBin(): string {
  return distPath('app/bin/chat-server.js');
}

/** The built chat-gateway binary (the distributed server's client-facing process). */
export function chatGatewayBin(): string {
  return distPath('app/bin/chat-gateway.js');
}

/** The built chat-service binary (business services over mprpc). */
export function chatServiceBin(): string {
  return distPath('app/bin/chat-service.js');
}
