/**
 * The classic mprpc configuration file: `key=value` lines, `#` comments, blank lines ignored.
 *
 *   # provider address (also what is published to ZooKeeper)
 *   rpcserverip=127.0.0.1
 *   rpcserverport=8000
 *   zookeeperip=127.0.0.1
 *   zookeeperport=2181
 *
 * The result spreads straight into provider and channel options:
 *   new RpcProvider({ ...loadRpcConfig('test.conf'), maxInFlightPerConnection: 256 })
 */
import { readFileSync } from 'node:fs';
import { formatHostPort } from './address.js';
import { RpcError } from './errors.js';

export interface RpcConfig {
  /** rpcserverip: the provider's listen and advertised address. */
  host?: string;
  /** rpcserverport (0 = any free port). */
  port?: number;
  /** zookeeperip:zookeeperport. */
  zookeeper?: string;
}

const KEYS = ['rpcserverip', 'rpcserverport', 'zookeeperip', 'zookeeperport'] as const;
type Key = (typeof KEYS)[number];

function isKey(key: string): key is Key {
  return (KEYS as readonly string[]).includes(key);
}

const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$|^[0-9A-Fa-f:.]+$/;

/** Parses config text; `source` names it in error messages. Throws RpcError('CONFIG_ERROR'). */
export function parseRpcConfig(text: string, source = 'config'): RpcConfig {
  const values = new Map<Key, { value: string; line: number }>();
  const fail = (line: number, message: string): never => {
    throw new RpcError('CONFIG_ERROR', `${source}:${line}: ${message}`);
  };
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    // A '#' starts a comment at the beginning of a line or after whitespace.
    const content = raw.replace(/(^|\s)#.*$/, '').trim();
    if (content === '') return;
    const eq = content.indexOf('=');
    if (eq < 0) fail(line, `expected key=value, got '${content}'`);
    const key = content.slice(0, eq).trim();
    const value = content.slice(eq + 1).trim();
    if (key === '') fail(line, 'missing key before =');
    if (!isKey(key)) fail(line, `unknown key '${key}' (known: ${KEYS.join(', ')})`);
    const k = key as Key;
    if (value === '') fail(line, `empty value for ${k}`);
    const previous = values.get(k);
    if (previous !== undefined) fail(line, `${k} given twice (first on line ${previous.line})`);
    values.set(k, { value, line });
  });

  const host = (key: Key): string | undefined => {
    const entry = values.get(key);
    if (entry === undefined) return undefined;
    if (!HOST.test(entry.value))
      fail(entry.line, `${key} '${entry.value}' is not an IP address or host name`);
    return entry.value;
  };
  const port = (key: Key, min: number): number | undefined => {
    const entry = values.get(key);
    if (entry === undefined) return undefined;
    const n = Number(entry.value);
    if (!/^\d+$/.test(entry.value) || n < min || n > 65535) {
      fail(entry.line, `${key} '${entry.value}' is not a port number (${min}..65535)`);
    }
    return n;
  };

  const config: RpcConfig = {};
  const rpcHost = host('rpcserverip');
  const rpcPort = port('rpcserverport', 0);
  if ((rpcHost === undefined) !== (rpcPort === undefined)) {
    throw new RpcError('CONFIG_ERROR', `${source}: rpcserverip and rpcserverport must be given together`);
  }
  if (rpcHost !== undefined) config.host = rpcHost;
  if (rpcPort !== undefined) config.port = rpcPort;
  const zkHost = host('zookeeperip');
  const zkPort = port('zookeeperport', 1);
  if ((zkHost === undefined) !== (zkPort === undefined)) {
    throw new RpcError('CONFIG_ERROR', `${source}: zookeeperip and zookeeperport must be given together`);
  }
  if (zkHost !== undefined && zkPort !== undefined) config.zookeeper = formatHostPort(zkHost, zkPort);
  if (config.host === undefined && config.zookeeper === undefined) {
    throw new RpcError('CONFIG_ERROR', `${source}: no settings (expected ${KEYS.join(', ')})`);
  }
  return config;
}

/** Reads and parses a config file (synchronously, at start-up). Throws RpcError('CONFIG_ERROR'). */
export function loadRpcConfig(path: string): RpcConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new RpcError('CONFIG_ERROR', `cannot read config file ${path}: ${reason}`, { cause });
  }
  return parseRpcConfig(text, path);
}
