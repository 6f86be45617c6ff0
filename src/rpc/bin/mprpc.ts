#!/usr/bin/env node
/**
 * mprpc call <pkg.Service.Method> [JSON] | mprpc list: call any method of a .proto service, list
 * the providers in ZooKeeper. All logic lives in src/rpc/cli/mprpcCli.ts (usage and exit codes).
 */
import { runMprpc } from '../cli/mprpcCli.js';

function exit(code: number): void {
  // Let stdout/stderr drain (they may be pipes) before leaving.
  process.stdout.write('', () => {
    process.stderr.write('', () => process.exit(code));
  });
}

runMprpc(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
}).then(exit, (error: unknown) => {
  process.stderr.write(`mprpc: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
  exit(1);
});
