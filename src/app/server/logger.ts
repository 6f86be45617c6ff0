export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const kRank: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function isLogLevel(value: string): value is LogLevel {
  return value in kRank;
}

export interface Logger {
  readonly level: LogLevel;
  log(level: Exclude<LogLevel, 'silent'>, message: string): void;
}

/** One line per event on stderr: ISO time, level, message. */
export function createLogger(level: LogLevel, prefix = ''): Logger {
  const min = kRank[level];
  return {
    level,
    log(at, message) {
      if (kRank[at] < min) return;
      process.stderr.write(`${new Date().toISOString()} ${at.toUpperCase()} ${prefix}${message}\n`);
    },
  };
}
