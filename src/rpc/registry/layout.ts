/**
 * Where providers are written in ZooKeeper (README, "Registry layout").
 *
 * Native:  <root>/services/<full service name>/providers/<host:port>   ephemeral, JSON ProviderRecord
 * Classic: /<ServiceShortName>                                          persistent, empty
 *          /<ServiceShortName>/<MethodName>                             ephemeral, "ip:port"
 */
export const DEFAULT_REGISTRY_ROOT = '/mprpc';

export function providersPath(root: string, service: string): string {
  return `${root}/services/${service}/providers`;
}

export function providerPath(root: string, service: string, hostPort: string): string {
  return `${providersPath(root, service)}/${hostPort}`;
}

export function classicServicePath(shortName: string): string {
  return `/${shortName}`;
}

export function classicMethodPath(shortName: string, method: string): string {
  return `/${shortName}/${method}`;
}

/** The data of a native provider node. */
export interface ProviderRecord {
  host: string;
  port: number;
  /** Calls running on the provider when it last reported (all services, all callers). */
  load: number;
  /** Calls answered per second over the last report interval. */
  callsPerSec: number;
  /** Methods of this service the provider serves. */
  methods: string[];
  /** Wire formats accepted on host:port. */
  protocols: string[];
  pid: number;
  /** Epoch ms of this report. */
  updatedAt: number;
}

/** A registry node's data: its record as UTF-8 JSON. */
export function encodeJsonNode(record: object): globalThis.Buffer {
  return globalThis.Buffer.from(JSON.stringify(record), 'utf8');
}

/**
 * A registry node's data as a JSON object whose fields are still to be checked; null when it is
 * not JSON or not an object (a foreign or half-written node is skipped, never trusted).
 */
export function decodeJsonNode<T extends object>(data: globalThis.Buffer): Partial<T> | null {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    return null;
  }
  return typeof value === 'object' && value !== null ? (value as Partial<T>) : null;
}

export function encodeRecord(record: ProviderRecord): globalThis.Buffer {
  return encodeJsonNode(record);
}

/** Parses a node's data; null when it is not a usable record (the node's name still gives host:port). */
export function decodeRecord(data: globalThis.Buffer): ProviderRecord | null {
  const r = decodeJsonNode<ProviderRecord>(data);
  if (r === null || typeof r.host !== 'string' || typeof r.port !== 'number') return null;
  return {
    host: r.host,
    port: r.port,
    load: typeof r.load === 'number' && r.load >= 0 ? r.load : 0,
    callsPerSec: typeof r.callsPerSec === 'number' ? r.callsPerSec : 0,
    methods: Array.isArray(r.methods) ? r.methods.filter((m): m is string => typeof m === 'string') : [],
    protocols: Array.isArray(r.protocols)
      ? r.protocols.filter((m): m is string => typeof m === 'string')
      : [],
    pid: typeof r.pid === 'number' ? r.pid : 0,
    updatedAt: typeof r.updatedAt === 'number' ? r.updatedAt : 0,
  };
}
