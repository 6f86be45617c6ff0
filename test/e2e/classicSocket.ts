/**
 * A socket that reads exactly as the classic C++ client does: one 1,024-byte `recv` per callback
 * (Node's `onread` with a 1 KiB buffer), parsed up to the first `\0`, the rest of that read
 * dropped. For tests of what the classic client actually sees.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { WireObject } from '../../src/app/client/types.js';
import { within } from './support.js';

export class ClassicSocket {
  readonly closed: Promise<void>;
  /** Bytes of each recv that followed its first `\0` (the classic client never sees them). */
  droppedBytes = 0;
  private readonly replies: (WireObject | Error)[] = [];
  private waiter: ((reply: WireObject | Error) => void) | null = null;

  private constructor(readonly socket: Socket) {
    this.closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
  }

  static connect(host: string, port: number, localAddress?: string): Promise<ClassicSocket> {
    return new Promise((resolve, reject) => {
      let classic: ClassicSocket | null = null;
      const socket = netConnect({
        host,
        port,
        ...(localAddress ? { localAddress } : {}),
        onread: {
          buffer: Buffer.alloc(1024),
          callback: (n: number, buf: Uint8Array): boolean => {
            classic?.onRecv(Buffer.from(buf.subarray(0, n)));
            return true;
          },
        },
      });
      classic = new ClassicSocket(socket);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(classic!);
      });
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  send(request: object): void {
    this.socket.write(`${JSON.stringify(request)}\0`);
  }

  /** The next reply (one per recv, as the classic client parses them). */
  next(timeoutMs = 15_000): Promise<WireObject> {
    const ready = this.replies.shift();
    const reply =
      ready !== undefined
        ? Promise.resolve(ready)
        : new Promise<WireObject | Error>((resolve) => {
            this.waiter = resolve;
            void this.closed.then(() => resolve(new Error('closed before a reply')));
          });
    return within(
      reply.then((r) => {
        if (r instanceof Error) throw r;
        return r;
      }),
      timeoutMs,
      'a classic reply',
    );
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onRecv(bytes: Buffer): void {
    const nul = bytes.indexOf(0);
    const text = (nul < 0 ? bytes : bytes.subarray(0, nul)).toString('utf8');
    if (nul >= 0) this.droppedBytes += bytes.length - nul - 1;
    let reply: WireObject | Error;
    try {
      reply = JSON.parse(text) as WireObject;
    } catch {
      reply = new Error(`the classic client could not parse: ${text.slice(0, 200)}`);
    }
    const waiter = this.waiter;
    this.waiter = null;
    if (waiter !== null) waiter(reply);
    else this.replies.push(reply);
  }
}
