export * from './commands.js';
export * from './format.js';
export { type CliIo, KEEPALIVE_MS, runCli } from './run.js';
