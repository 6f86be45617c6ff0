/** "host:port" strings, as used in ZooKeeper node names and data and in options. */
export interface HostPort {
  host: string;
  port: number;
}

/** Parses "host:port" (IPv6 hosts may be bracketed); null when malformed. */
export function parseHostPort(text: string): HostPort | null {
  const match = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(text.trim());
  if (match === null) return null;
  const port = Number(match[2]);
  if (!match[1] || port < 1 || port > 65535) return null;
  return { host: match[1], port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Checks a ZooKeeper connect string, "host:port[,host:port…]" (an ensemble: the client tries the
 * servers in turn), and returns its servers; null when any part is malformed. A chroot suffix
 * ("/path") is not accepted: the registry root is its own option.
 */
export function parseZkHosts(text: string): HostPort[] | null {
  const parts = text.split(',');
  const hosts: HostPort[] = [];
  for (const part of parts) {
    const address = parseHostPort(part);
    if (address === null) return null;
    hosts.push(address);
  }
  return hosts;
}
