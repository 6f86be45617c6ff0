import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP proxy (node:net) in front of a real service (MariaDB, ZooKeeper). `outage()` cuts every
 * proxied connection and resets every new one until `restore()`: what a client sees of the
 * service restarting or vanishing, while everyone not behind the proxy still reaches it;
 * `mute()` silences the open connections without closing them.
 */
export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private down = false;
  accepted = 0;
  refused = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    let proxy: TcpProxy | null = null;
    const server = createServer((client) => proxy!.onClient(client, targetHost, targetPort));
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const a = server.address();
        resolve(typeof a === 'object' && a !== null ? a.port : 0);
      });
    });
    proxy = new TcpProxy(server, port);
    return proxy;
  }

  private onClient(client: Socket, host: string, port: number): void {
    if (this.down) {
      this.refused++;
      client.resetAndDestroy();
      return;
    }
    this.accepted++;
    const upstream = tcpConnect({ host, port });
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  outage(): void {
    this.down = true;
    for (const [client, upstream] of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  restore(): void {
    this.down = false;
  }

  /**
   * The service goes silent on the connections open now: what the client sends still arrives,
   * but nothing comes back and nothing is closed (a peer that stopped answering). New
   * connections are proxied as usual.
   */
  mute(): void {
    for (const [client, upstream] of this.pairs) {
      upstream.unpipe(client);
      upstream.resume(); // with no reader left, this discards what the service sends
    }
  }

  close(): Promise<void> {
    this.outage();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
