// Copies the non-TypeScript files the runtime reads (.proto schemas) from src/ into the build's
// output directory, keeping their place in the tree: `node scripts/copy-assets.mjs dist` puts
// src/app/protocol/chat.proto at dist/app/protocol/chat.proto (the package layout), and
// `node scripts/copy-assets.mjs build/src` does the same for the benches' build.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const outDir = process.argv[2];
if (!outDir) {
  console.error('usage: node scripts/copy-assets.mjs OUT_DIR');
  process.exit(2);
}

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.proto')) cpSync(path, join(outDir, relative('src', path)));
  }
}
walk('src');
