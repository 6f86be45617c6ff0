// Copies the non-TypeScript files the runtime reads (.proto schemas) from src/ into dist/src/.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.proto')) cpSync(path, join('dist', path));
  }
}
walk('src');
