/** Tiny `--name value` parser shared by the bench scripts (they take numbers and words only). */
export function parseArgs(
  argv: string[],
  defaults: Record<string, string>,
  help: string,
): Record<string, string> {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(help);
      process.exit(0);
    }
    const key = arg.replace(/^--/, '');
    if (!arg.startsWith('--') || !(key in defaults) || argv[i + 1] === undefined) {
      process.stderr.write(`unknown or incomplete option: ${arg}\n${help}`);
      process.exit(2);
    }
    out[key] = argv[++i]!;
  }
  return out;
}

export function positiveInt(value: string | undefined, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`--${name} must be a positive integer, got ${value}\n`);
    process.exit(2);
  }
  return n;
}
