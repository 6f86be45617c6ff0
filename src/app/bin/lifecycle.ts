/** Start-up and shutdown pieces shared by chat-server, chat-service and chat-gateway. */
import { createServer } from 'node:net';
import { RedisCluster, type RedisClusterOptions } from '../cluster/RedisCluster.js';
import type { Logger } from '../server/logger.js';

export const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** A URL or path fit for a log line: any password in it is masked. */
export function withoutPassword(location: string): string {
  return location.replace(/^([a-z][\w+.-]*:\/\/[^/:@]*):[^@/]*@/i, '$1:***@');
}

/** Resolves with the exit code once SIGTERM/SIGINT has run `stop`. */
export function untilSignal(logger: Logger, stop: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.log('info', 'stopping', { signal });
      stop().then(
        () => {
          logger.log('info', 'stopped');
          resolve(0);
        },
        (error: unknown) => {
          logger.log('error', `stop failed: ${describe(error)}`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
  });
}

/** Splits `--name value` / `--name=value` pairs out of argv: the given names and the rest. */
export function takeFlags(
  argv: readonly string[],
  names: readonly string[],
): { taken: Map<string, string>; rest: string[]; error?: string } {
  const taken = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!names.includes(name)) {
      rest.push(arg);
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') return { taken, rest, error: `option ${name} needs a value` };
    taken.set(name, value);
  }
  return { taken, rest };
}

/** A port that is free on `host` now (the kernel's pick for port 0), so a server id can name it. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject()));
    });
  });
}

/**
 * Presence and push routing in Redis, started; null (said on stderr as `bin: …`) when Redis cannot
 * be reached, after which the caller closes what it had opened and exits 1.
 */
export async function startRedisCluster(
  bin: string,
  options: RedisClusterOptions,
): Promise<RedisCluster | null> {
  const cluster = new RedisCluster(options);
  try {
    await cluster.start();
    return cluster;
  } catch (error) {
    process.stderr.write(
      `${bin}: cannot reach redis at ${withoutPassword(options.url)}: ${describe(error)}\n`,
    );
    await cluster.stop();
    return null;
  }
}
