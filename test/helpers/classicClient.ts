/**
 * A stand-in for the classic C++ ChatClient's reading, exactly: each read is one `recv` of at
 * most 1,024 bytes (a Node socket with `onread` and a 1,024-byte buffer makes one read(2) per
 * callback), parsed as a C string — up to the first `\0` — and the rest of that read is dropped.
 * Whatever the real client would lose or choke on is recorded (`dropped`, `unparsed`), so a test
 * can assert that nothing was. Writes are `JSON\0`, as the classic client sends them.
 *
 *   const c = await ClassicClient.connect(server.host, server.port);
 *   const ack = await c.login(id, 'pw');
 *   await c.waitForCount((m) => m.msgid === 6, 50);
 *   expect(c.dropped).toEqual([]);
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

export type ClassicMessage = Record<string, unknown>;

const kRecvBytes = 1024;

export class ClassicClient {
  /** Every message the classic client would have shown, in arrival order. */
  readonly messages: ClassicMessage[] = [];
  /** Bytes after the first `\0` of a read: the real client drops them (lost messages). */
  readonly dropped: string[] = [];
  /** Reads that do not parse up to their `\0`: the real client aborts on them. */
  readonly unparsed: string[] = [];
  /** Size of the largest single read. */
  largestRead = 0;
  readonly closed: Promise<void>;
  private waiters: (() => void)[] = [];

  private constructor(private readonly socket: Socket) {
    this.closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    void this.closed.then(() => this.wake());
  }

  static async connect(host: string, port: number, timeoutMs = 15_000): Promise<ClassicClient> {
    let client: ClassicClient | null = null;
    const recv = Buffer.alloc(kRecvBytes);
    const socket = connect({
      host,
      port,
      onread: { buffer: recv, callback: (n: number, buf: Uint8Array) => client!.onRecv(n, buf) },
    });
    client = new ClassicClient(socket);
    const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), timeoutMs);
    try {
      await once(socket, 'connect');
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  get connected(): boolean {
    return !this.socket.destroyed && this.socket.readyState === 'open';
  }

  send(message: object): void {
    this.socket.write(`${JSON.stringify(message)}\0`);
  }

  async register(name: string, password: string, timeoutMs = 20_000): Promise<ClassicMessage> {
    const from = this.messages.length;
    this.send({ msgid: 4, name, password });
    return this.waitFor((m) => m.msgid === 5, timeoutMs, 'REG_MSG_ACK', from);
  }

  async login(id: number, password: string, timeoutMs = 20_000): Promise<ClassicMessage> {
    const from = this.messages.length;
    this.send({ msgid: 1, id, password });
    return this.waitFor((m) => m.msgid === 2, timeoutMs, 'LOGIN_MSG_ACK', from);
  }

  /** The first message from index `from` on that matches. */
  async waitFor(
    match: (m: ClassicMessage) => boolean,
    timeoutMs: number,
    what: string,
    from = 0,
  ): Promise<ClassicMessage> {
    let found: ClassicMessage | undefined;
    await this.until(
      () => {
        found = this.messages.slice(from).find(match);
        return found !== undefined;
      },
      timeoutMs,
      () => what,
    );
    return found!;
  }

  /** Resolves with the first `count` matching messages once that many have arrived. */
  async waitForCount(
    match: (m: ClassicMessage) => boolean,
    count: number,
    timeoutMs: number,
  ): Promise<ClassicMessage[]> {
    let got: ClassicMessage[] = [];
    await this.until(
      () => {
        got = this.messages.filter(match);
        return got.length >= count;
      },
      timeoutMs,
      () =>
        `${count} messages (have ${got.length}; dropped ${this.dropped.length}, unparsed ${this.unparsed.length})`,
    );
    return got.slice(0, count);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private until(ready: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`classic client: timed out after ${timeoutMs} ms waiting for ${what()}`));
      }, timeoutMs);
      const check = (): void => {
        if (ready()) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve();
        } else if (!this.connected) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          reject(new Error(`classic client: connection closed while waiting for ${what()}`));
        }
      };
      this.waiters.push(check);
      check();
    });
  }

  /** One recv: parse up to the first `\0`, drop the rest of the read (the C++ client's code). */
  private onRecv(nread: number, buf: Uint8Array): boolean {
    this.largestRead = Math.max(this.largestRead, nread);
    const bytes = Buffer.from(buf.buffer, buf.byteOffset, nread);
    const nul = bytes.indexOf(0);
    const text = bytes.toString('utf8', 0, nul < 0 ? nread : nul);
    if (nul >= 0 && nul + 1 < nread) this.dropped.push(bytes.toString('utf8', nul + 1, nread));
    try {
      this.messages.push(JSON.parse(text) as ClassicMessage);
    } catch {
      this.unparsed.push(text);
    }
    this.wake();
    return true;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
