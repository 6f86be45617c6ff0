#!/usr/bin/env node
/**
 * chat-client host port [--codec json|protobuf]: the classic cluster chat client.
 * All logic lives in src/app/client/cli (see runCli for behaviour and exit codes).
 */
import { runCli } from '../client/cli/run.js';

function exit(code: number): void {
  // Let stdout/stderr drain (they may be pipes) before leaving.
  process.stdout.write('', () => {
    process.stderr.write('', () => process.exit(code));
  });
}

runCli(process.argv.slice(2), { input: process.stdin, stdout: process.stdout, stderr: process.stderr }).then(
  exit,
  (error: unknown) => {
    process.stderr.write(
      `chat-client: internal error: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    exit(1);
  },
);
