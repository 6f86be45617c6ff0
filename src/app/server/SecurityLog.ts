import type { Logger } from './logger.js';

export type SecurityEvent =
  | 'connection refused'
  | 'anonymous connection evicted'
  | 'message deadline'
  | 'input budget'
  | 'slow reader'
  | 'bad input'
  | 'login throttled'
  | 'registration throttled'
  | 'accept error';

/** Lines per event kind per second before the rest are only counted. */
const kLinesPerSecond = 20;

/**
 * Security events (hostile or broken clients) at info/warn with the peer address. An attack can
 * cause thousands per second, so each kind logs at most `kLinesPerSecond` lines a second and
 * then one line saying how many it left out: the log shows the attack without becoming one.
 */
export class SecurityLog {
  private readonly windows = new Map<SecurityEvent, { start: number; lines: number; dropped: number }>();

  constructor(private readonly logger: Logger) {}

  warn(event: SecurityEvent, peer: string, detail: string): void {
    this.write('warn', event, peer, detail);
  }

  info(event: SecurityEvent, peer: string, detail: string): void {
    this.write('info', event, peer, detail);
  }

  private write(level: 'info' | 'warn', event: SecurityEvent, peer: string, detail: string): void {
    const now = Date.now();
    let window = this.windows.get(event);
    if (window === undefined) {
      window = { start: now, lines: 0, dropped: 0 };
      this.windows.set(event, window);
    }
    if (now - window.start >= 1000) {
      if (window.dropped > 0) {
        this.logger.log('warn', `security: ${event}: ${window.dropped} more in the last second (not shown)`);
      }
      window.start = now;
      window.lines = 0;
      window.dropped = 0;
    }
    if (window.lines >= kLinesPerSecond) {
      window.dropped++;
      return;
    }
    window.lines++;
    this.logger.log(level, `security: ${event}: ${peer}: ${detail}`);
  }
}
