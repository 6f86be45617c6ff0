/** An IP endpoint (muduo's InetAddress). Immutable. */
export class InetAddress {
  constructor(
    readonly ip: string,
    readonly port: number,
    readonly family: 'IPv4' | 'IPv6' = ip.includes(':') ? 'IPv6' : 'IPv4',
  ) {}

  /** @internal Builds one from the possibly-undefined fields of a net.Socket. */
  static fromSocket(
    ip: string | undefined,
    port: number | undefined,
    family: string | undefined,
  ): InetAddress {
    return new InetAddress(ip ?? '', port ?? 0, family === 'IPv6' ? 'IPv6' : 'IPv4');
  }

  /** "ip:port", with brackets around IPv6 addresses. */
  toIpPort(): string {
    return this.family === 'IPv6' ? `[${this.ip}]:${this.port}` : `${this.ip}:${this.port}`;
  }

  toString(): string {
    return this.toIpPort();
  }
}
