export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** `text`: one human-readable line per event (default); `json`: one JSON object per line. */
export type LogFormat = 'text' | 'json';

const kRank: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function isLogLevel(value: string): value is LogLevel {
  return value in kRank;
}

export function isLogFormat(value: string): value is LogFormat {
  return value === 'text' || value === 'json';
}

/** Structured context of a log line: peer, user, codec, reason, … (never a password). */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Logger {
  readonly level: LogLevel;
  /** Whether a line at `level` would be written (skip building costly fields otherwise). */
  enabled(level: Exclude<LogLevel, 'silent'>): boolean;
  log(level: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  /** Default 'info'. */
  level?: LogLevel;
  /** Default 'text'. */
  format?: LogFormat;
  /** Fields on every line (e.g. the worker). */
  base?: LogFields;
  /** Where lines go. Default process.stderr. */
  write?: (line: string) => void;
}

/** A text value as it appears after `key=`: bare when it is one plain word, else JSON-quoted. */
function textValue(value: string | number | boolean | null): string {
  if (typeof value !== 'string') return String(value);
  return /^[\w.:/@[\]-]+$/.test(value) ? value : JSON.stringify(value);
}

/**
 * One line per event, written synchronously (stderr), so the order of lines is the order of
 * events even when the process exits right after. Text: `TIME LEVEL message key=value …`.
 * JSON: `{"time","level","msg",…fields}`, for log shippers.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  const min = kRank[level];
  const json = (options.format ?? 'text') === 'json';
  const base = options.base ?? {};
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  return {
    level,
    enabled: (at) => kRank[at] >= min,
    log(at, message, fields) {
      if (kRank[at] < min) return;
      const time = new Date().toISOString();
      if (json) {
        write(`${JSON.stringify({ time, level: at, msg: message, ...base, ...fields })}\n`);
        return;
      }
      let line = `${time} ${at.toUpperCase()} ${message}`;
      for (const source of [base, fields]) {
        if (source === undefined) continue;
        for (const key of Object.keys(source)) {
          const value = source[key];
          if (value !== undefined) line += ` ${key}=${textValue(value)}`;
        }
      }
      write(`${line}\n`);
    },
  };
}
