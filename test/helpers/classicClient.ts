/**
 * A stand-in for the classic C++ ChatClient's reading, exactly: each read is one `recv` of at
 * most 1,024 bytes (a Node socket with `onread` and a 1,024-byte buffer makes one read(2) per
 * callback), parsed as a C string — up to the first `\0` — and the rest of that read is dropped.
 * Whatever the real client would lose or choke on is recorded (`dropped`, `unparsed`), so a test
 * can assert that nothing was. Writes are `JSON\0`, as the classic client sends them.
 *
 * Like the real client's reading thread, the socket lives in a thread of its own (a worker), so
 * the test's own work (other clients, garbage collection) does not delay its reads; each read is
 * handed to this side as it was (its bytes up to the first `\0`, and what followed).
 *
 *   const c = await ClassicClient.connect(server.host, server.port);
 *   const ack = await c.login(id, 'pw');
 *   await c.waitForCount((m) => m.msgid === 6, 50);
 *   expect(c.dropped).toEqual([]);
 */
import { Worker } from 'node:worker_threads';

export type ClassicMessage = Record<string, unknown>;

const kRecvBytes = 1024;

/** What the reading thread reports. */
type FromReader =
  | { type: 'connect' }
  | { type: 'read'; n: number; size: number; text: string; rest: string | null }
  | { type: 'close'; error: string | null };

/** The reading thread: plain CommonJS, evaluated as is (no test transform runs in a worker). */
const READER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { connect } = require('node:net');
const recv = Buffer.alloc(${kRecvBytes});
let pending = Buffer.alloc(0);
const socket = connect({
  host: workerData.host,
  port: workerData.port,
  onread: {
    buffer: recv,
    callback: (n, buf) => {
      let bytes = Buffer.from(buf.buffer, buf.byteOffset, n);
      if (workerData.stream) {
        // A correct stream reader instead: every complete message, whatever the reads.
        bytes = Buffer.concat([pending, bytes]);
        let start = 0;
        for (let nul = bytes.indexOf(0); nul >= 0; nul = bytes.indexOf(0, start)) {
          const text = bytes.toString('utf8', start, nul);
          parentPort.postMessage({ type: 'read', n, size: nul + 1 - start, text, rest: null });
          start = nul + 1;
        }
        pending = Buffer.from(bytes.subarray(start));
        return true;
      }
      const nul = bytes.indexOf(0);
      const text = bytes.toString('utf8', 0, nul < 0 ? n : nul);
      const rest = nul >= 0 && nul + 1 < n ? bytes.toString('utf8', nul + 1, n) : null;
      parentPort.postMessage({ type: 'read', n, size: nul < 0 ? n : nul + 1, text, rest });
      return true;
    },
  },
});
let error = null;
socket.on('connect', () => parentPort.postMessage({ type: 'connect' }));
socket.on('error', (e) => { error = e.message; });
socket.on('close', () => {
  parentPort.postMessage({ type: 'close', error });
  parentPort.close();
});
parentPort.on('message', (m) => {
  if (m.type === 'send') socket.write(m.data);
  else socket.destroy();
});
`;

export class ClassicClient {
  /** Every message the classic client would have shown, in arrival order. */
  readonly messages: ClassicMessage[] = [];
  /** Bytes after the first `\0` of a read: the real client drops them (lost messages). */
  readonly dropped: string[] = [];
  /** Reads that do not parse up to their `\0`: the real client aborts on them. */
  readonly unparsed: string[] = [];
  /** Size of the largest single read. */
  largestRead = 0;
  /** Size of the largest message, its `\0` included. */
  largestMessage = 0;
  readonly closed: Promise<void>;
  private waiters: (() => void)[] = [];
  private isOpen = false;
  private isClosed = false;
  private readonly reader: Worker;
  private readonly opened: Promise<void>;

  private constructor(host: string, port: number, stream: boolean) {
    this.reader = new Worker(READER_SOURCE, { eval: true, workerData: { host, port, stream } });
    let onOpen!: () => void;
    let onFail!: (error: Error) => void;
    this.opened = new Promise<void>((resolve, reject) => {
      onOpen = resolve;
      onFail = reject;
    });
    this.closed = new Promise<void>((resolve) => {
      const done = (error: string | null): void => {
        if (this.isClosed) return;
        this.isClosed = true;
        this.isOpen = false;
        onFail(new Error(`classic client: closed before connecting${error ? `: ${error}` : ''}`));
        resolve();
        this.wake();
      };
      this.reader.on('message', (m: FromReader) => {
        if (m.type === 'connect') {
          this.isOpen = true;
          onOpen();
        } else if (m.type === 'read') this.onRecv(m.n, m.size, m.text, m.rest);
        else done(m.error);
      });
      this.reader.on('error', (e) => done(e.message));
      this.reader.on('exit', () => done(null));
    });
  }

  /**
   * `stream: true` makes a correct stream reader instead (every message of every read), for
   * tests about what is sent rather than about how the classic client reads it.
   */
  static async connect(
    host: string,
    port: number,
    { timeoutMs = 15_000, stream = false }: { timeoutMs?: number; stream?: boolean } = {},
  ): Promise<ClassicClient> {
    const client = new ClassicClient(host, port, stream);
    const timer = setTimeout(() => client.destroy(), timeoutMs);
    try {
      await client.opened;
    } finally {
      clearTimeout(timer);
    }
    return client;
  }

  get connected(): boolean {
    return this.isOpen && !this.isClosed;
  }

  send(message: object): void {
    this.reader.postMessage({ type: 'send', data: `${JSON.stringify(message)}\0` });
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
    if (this.isClosed) return;
    this.reader.postMessage({ type: 'destroy' });
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
  private onRecv(nread: number, size: number, text: string, rest: string | null): void {
    this.largestRead = Math.max(this.largestRead, nread);
    this.largestMessage = Math.max(this.largestMessage, size);
    if (rest !== null) this.dropped.push(rest);
    try {
      this.messages.push(JSON.parse(text) as ClassicMessage);
    } catch {
      this.unparsed.push(text);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}
