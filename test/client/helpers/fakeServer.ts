/**
 * A scripted framed-JSON peer on a real socket (node:net), for client behaviour the real server
 * cannot be made to show on demand: duplicate or out-of-order deliveries, replies without reqid,
 * late or missing replies, undecodable frames, and exact counting of the client's DELIVER_ACKs.
 * Frames are framed JSON or, when the client's first payload was protobuf, muduo protobuf (through
 * the protocol layer's codec); replies use the client's codec.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { protobufCodec } from '../../../src/app/protocol/codecs.js';

export type Obj = Record<string, unknown>;

export class FakePeer {
  readonly received: Obj[] = [];
  kind: 'json' | 'protobuf' = 'json';
  private pending = Buffer.alloc(0);
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  constructor(
    readonly socket: Socket,
    private readonly onRequest: (req: Obj, peer: FakePeer) => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4) {
        const len = this.pending.readUInt32BE(0);
        if (this.pending.length < 4 + len) break;
        const payload = this.pending.subarray(4, 4 + len);
        if (this.received.length === 0 && payload[0] !== 0x7b) this.kind = 'protobuf';
        const obj =
          payload[0] === 0x7b
            ? (JSON.parse(payload.toString('utf8')) as Obj)
            : (protobufCodec.decodePayload(payload) as Obj);
        this.pending = this.pending.subarray(4 + len);
        this.received.push(obj);
        this.onRequest(obj, this);
        this.wake();
      }
    });
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
  }

  send(obj: Obj): void {
    this.sendRaw(this.kind === 'json' ? FakePeer.frame(obj) : protobufCodec.encode(obj));
  }

  sendRaw(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  static frame(obj: Obj): Buffer {
    const body = Buffer.from(JSON.stringify(obj), 'utf8');
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length, 0);
    return Buffer.concat([head, body]);
  }

  /** Received frames with this msgid. */
  ofType(msgid: number): Obj[] {
    return this.received.filter((o) => o.msgid === msgid);
  }

  /** Resolves once `n` frames in total have been received. */
  waitForFrames(n: number, timeoutMs = 3000): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`fake peer: ${this.received.length} of ${n} frames after ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  private wake(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (this.received.length >= w.n) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }
}

export interface FakeServer {
  port: number;
  /** Resolves with the peer of the next (or an already) accepted connection, in accept order. */
  peer(index?: number): Promise<FakePeer>;
  close(): Promise<void>;
}

/** `onRequest` sees every decoded request frame; reply with `peer.send`. */
export async function startFakeServer(
  onRequest: (req: Obj, peer: FakePeer) => void = () => {},
): Promise<FakeServer> {
  const peers: FakePeer[] = [];
  const waiting: { index: number; resolve: (p: FakePeer) => void }[] = [];
  const server: Server = createServer((socket) => {
    socket.setNoDelay(true);
    const peer = new FakePeer(socket, onRequest);
    peers.push(peer);
    for (let i = waiting.length - 1; i >= 0; i--) {
      const w = waiting[i]!;
      if (w.index < peers.length) {
        waiting.splice(i, 1);
        w.resolve(peers[w.index]!);
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    port: address.port,
    peer: (index = 0) =>
      index < peers.length
        ? Promise.resolve(peers[index]!)
        : new Promise((resolve) => {
            waiting.push({ index, resolve });
          }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of peers) p.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A valid one-to-one chat push with the given seq. */
export function push(seq: number, msg = `m${seq}`): Obj {
  return { msgid: 6, mid: 1000 + seq, seq, id: 7, name: 'peer', toid: 1, msg, time: '2024-01-02 03:04:05' };
}
