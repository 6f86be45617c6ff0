/**
 * Shared pieces of the end-to-end tests: client bookkeeping, raw sockets that speak the wire
 * bytes directly, and store snapshots taken through the model API.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect } from 'vitest';
import { ChatClient, type ChatClientOptions } from '../../src/app/client/ChatClient.js';
import type { CodecName } from '../../src/app/client/codec.js';
import { LegacyClient } from '../../src/app/client/LegacyClient.js';
import type { ChatPush, WireObject } from '../../src/app/client/types.js';
import type { ChatStore } from '../../src/app/model/ChatStore.js';
import { ChatProtobufCodec } from '../../src/app/protocol/chatProtobuf.js';
import {
  type ChatServerProcess,
  type ServerTarget,
  type StartChatServerOptions,
  startChatServer,
} from '../helpers/chatServer.js';

/**
 * What every parameterized suite runs against: chat-server on each store, and the distributed
 * server (a gateway and the services in separate processes, over MySQL).
 */
export const STORES: readonly ServerTarget[] = ['sqlite', 'mysql', 'distributed'];
export const CODECS: readonly CodecName[] = ['json', 'protobuf'];

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** "YYYY-MM-DD HH:MM:SS" */
export const CHAT_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

let nameCounter = 0;

/** A user or group name unique across runs and processes (≤ 50 chars). */
export function uniqueName(prefix = 'u'): string {
  nameCounter++;
  const rnd = Math.floor(Math.random() * 36 ** 4).toString(36);
  return `${prefix}_${process.pid.toString(36)}_${nameCounter}_${rnd}`.slice(0, 50);
}

export interface User {
  id: number;
  name: string;
  password: string;
}

/** Polls `cond` until it holds; fails with `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Resolves with `p`, or rejects after `ms` (so a hung promise fails the test with a reason). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** Opens clients against one server and closes every one of them in `closeAll`. */
export class Clients {
  private readonly framed = new Set<ChatClient>();
  private readonly legacies = new Set<LegacyClient>();
  private readonly raws = new Set<RawSocket>();

  constructor(private readonly server: () => ChatServerProcess) {}

  async connect(codec: CodecName, options: Partial<ChatClientOptions> = {}): Promise<ChatClient> {
    const s = this.server();
    const c = await ChatClient.connect({
      host: s.host,
      port: s.port,
      codec,
      requestTimeoutMs: 20_000,
      connectTimeoutMs: 15_000,
      ...options,
    });
    this.framed.add(c);
    // The first frame fixes the codec of the server's replies: make it one of the client's own,
    // so that raw JSON frames sent later (rawCall) are still answered in protobuf.
    if (codec === 'protobuf') expect((await c.ping('hello')).msgid).toBe(19);
    return c;
  }

  async legacy(): Promise<LegacyClient> {
    const s = this.server();
    const c = await LegacyClient.connect({ host: s.host, port: s.port, connectTimeoutMs: 15_000 });
    this.legacies.add(c);
    return c;
  }

  async raw(): Promise<RawSocket> {
    const s = this.server();
    const r = await RawSocket.connect(s.host, s.port);
    this.raws.add(r);
    return r;
  }

  /** A new connection with a freshly registered user (not logged in). */
  async withNewUser(codec: CodecName, options: Partial<ChatClientOptions> = {}) {
    const client = await this.connect(codec, options);
    const user = await register(client);
    return { client, user };
  }

  /** A new connection logged in as a freshly registered user. */
  async loggedIn(codec: CodecName, options: Partial<ChatClientOptions> = {}) {
    const { client, user } = await this.withNewUser(codec, options);
    await login(client, user);
    return { client, user };
  }

  /** A new connection logged in as `user`. */
  async loginAs(codec: CodecName, user: User, options: Partial<ChatClientOptions> = {}, lastseq?: number) {
    const client = await this.connect(codec, options);
    const ack = await login(client, user, lastseq);
    return { client, ack };
  }

  async closeAll(): Promise<void> {
    const framed = [...this.framed];
    const legacies = [...this.legacies];
    const raws = [...this.raws];
    this.framed.clear();
    this.legacies.clear();
    this.raws.clear();
    for (const c of framed) c.destroy();
    for (const c of legacies) c.destroy();
    for (const r of raws) r.destroy();
    await Promise.all([
      ...framed.map((c) => within(c.closed, 10_000, 'client close')),
      ...legacies.map((c) => within(c.closed, 10_000, 'legacy client close')),
      ...raws.map((r) => within(r.closed, 10_000, 'raw socket close')),
    ]);
  }
}

export async function register(
  client: ChatClient,
  name = uniqueName(),
  password = 'pw-secret',
): Promise<User> {
  const r = await client.register(name, password);
  expect(r, `register ${name}`).toMatchObject({ msgid: 5, errno: 0 });
  expect(r.id).toBeGreaterThan(0);
  return { id: r.id, name, password };
}

export async function login(client: ChatClient, user: User, lastseq?: number) {
  const ack = await client.login(user.id, user.password, lastseq);
  expect(ack, `login of ${user.id}`).toMatchObject({ msgid: 2, errno: 0, id: user.id, name: user.name });
  return ack;
}

let rawReqid = 0;

/** A framed JSON payload with its 4-byte big-endian length. */
export function jsonFrame(obj: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(obj), 'utf8');
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/**
 * Sends `body` as a framed JSON payload exactly as given plus a fresh string `reqid` unless it has
 * one (whatever the
 * client's codec: later frames may be JSON on a protobuf connection), and resolves with the
 * reply carrying that reqid. For requests the typed client cannot express (wrong field types,
 * unknown msgids).
 */
export function rawCall(client: ChatClient, body: WireObject, timeoutMs = 15_000): Promise<WireObject> {
  const given = body.reqid;
  const reqid =
    typeof given === 'string' || typeof given === 'number' ? given : `raw-${process.pid}-${++rawReqid}`;
  const key = String(reqid);
  return new Promise<WireObject>((resolve, reject) => {
    const offs: (() => void)[] = [];
    const finish = (fn: () => void): void => {
      clearTimeout(timer);
      for (const off of offs) off();
      fn();
    };
    const timer = setTimeout(
      () => finish(() => reject(new Error(`no reply to ${JSON.stringify(body).slice(0, 200)}`))),
      timeoutMs,
    );
    offs.push(
      client.on('unsolicited', (m) => {
        if (m.reqid !== undefined && String(m.reqid) === key) finish(() => resolve(m));
      }),
      client.on('serverError', (e) => {
        if (e.reqid !== undefined && String(e.reqid) === key)
          finish(() => resolve(e as unknown as WireObject));
      }),
      client.on('close', (info) =>
        finish(() => reject(new Error(`connection closed before the reply: ${info.error?.message ?? ''}`))),
      ),
    );
    client.writeBytes(jsonFrame({ ...body, reqid }));
  });
}

/**
 * A second request that answers only after everything sent before it was processed (the
 * session runs requests in order): after it, no earlier reply or push can still be in flight
 * from this session's own requests.
 */
export async function barrier(client: ChatClient): Promise<void> {
  const pong = await client.ping('barrier');
  expect(pong.msgid).toBe(19);
}

/** Sorts pushes by seq and checks they are exactly `from..to`. */
export function expectSeqs(pushes: readonly ChatPush[], from: number, to: number): void {
  const seqs = pushes.map((p) => p.seq);
  expect(seqs).toEqual(Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i));
}

// ------------------------------------------------------------------------------------- raw socket

const protobuf = new ChatProtobufCodec();

/**
 * A plain node:net socket that records what the server sends, decoded as frames (4-byte length,
 * JSON or protobuf payload) or as the classic `JSON\0` stream.
 */
export class RawSocket {
  readonly received: WireObject[] = [];
  /** What could not be decoded (a server bug if ever non-empty). */
  readonly garbage: string[] = [];
  bytesReceived = 0;
  mode: 'framed' | 'legacy' = 'framed';
  readonly closed: Promise<void>;
  private ended = false;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: { match: (m: WireObject) => boolean; resolve: (m: WireObject) => void }[] = [];
  private closeWaiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    this.closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', () => {});
    void this.closed.then(() => {
      for (const w of this.closeWaiters.splice(0)) w();
    });
  }

  /** `localAddress` picks the source address (any 127.x.y.z is loopback: a distinct "client IP"). */
  static connect(host: string, port: number, localAddress?: string): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port, noDelay: true, ...(localAddress ? { localAddress } : {}) });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawSocket(socket));
      });
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  /** The server half-closed or closed its side. */
  get peerEnded(): boolean {
    return this.ended || this.socket.destroyed;
  }

  write(bytes: Uint8Array | string): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        resolve();
        return;
      }
      this.socket.write(bytes, () => resolve());
    });
  }

  /** Sends a framed JSON object. */
  sendJson(obj: unknown): Promise<void> {
    return this.write(jsonFrame(obj));
  }

  /** Sends a framed protobuf message (any JSON-shaped chat object with a msgid). */
  sendProtobuf(obj: WireObject): Promise<void> {
    return this.write(protobuf.encode(obj));
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The first received message matching `match` (already received or future), removed from `received`. */
  waitFor(match: (m: WireObject) => boolean, timeoutMs = 10_000): Promise<WireObject> {
    const at = this.received.findIndex(match);
    if (at >= 0) return Promise.resolve(this.received.splice(at, 1)[0]!);
    return within(
      new Promise<WireObject>((resolve, reject) => {
        if (this.socket.destroyed) {
          reject(new Error(`socket closed; received ${JSON.stringify(this.received).slice(0, 300)}`));
          return;
        }
        const w = { match, resolve };
        this.waiters.push(w);
        this.closeWaiters.push(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) {
            this.waiters.splice(i, 1);
            reject(new Error(`socket closed; received ${JSON.stringify(this.received).slice(0, 300)}`));
          }
        });
      }),
      timeoutMs,
      'a matching message on a raw socket',
    );
  }

  next(timeoutMs = 10_000): Promise<WireObject> {
    return this.waitFor(() => true, timeoutMs);
  }

  private onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      let payload: Buffer;
      if (this.mode === 'legacy') {
        const nul = this.buf.indexOf(0);
        if (nul < 0) return;
        payload = this.buf.subarray(0, nul);
        this.buf = this.buf.subarray(nul + 1);
      } else {
        if (this.buf.length < 4) return;
        const len = this.buf.readUInt32BE(0);
        if (len > 64 * 1024 * 1024) {
          this.garbage.push(`frame length ${len}`);
          this.buf = Buffer.alloc(0);
          return;
        }
        if (this.buf.length < 4 + len) return;
        payload = this.buf.subarray(4, 4 + len);
        this.buf = this.buf.subarray(4 + len);
      }
      let obj: WireObject;
      try {
        obj =
          this.mode === 'legacy' || payload[0] === 0x7b
            ? (JSON.parse(payload.toString('utf8')) as WireObject)
            : protobuf.decodePayload(payload);
      } catch {
        this.garbage.push(payload.toString('hex').slice(0, 200));
        continue;
      }
      const at = this.waiters.findIndex((w) => w.match(obj));
      if (at >= 0) this.waiters.splice(at, 1)[0]!.resolve(obj);
      else this.received.push(obj);
    }
  }
}

// ------------------------------------------------------------------------------- store snapshots

export interface UserSnapshot {
  id: number;
  name: string;
  passwordHash: string;
  friends: { id: number; name: string }[];
  groups: { id: number; groupname: string; groupdesc: string; users: { id: number; role: string }[] }[];
  inbox: {
    seq: number;
    mid: number;
    sender: number;
    kind: string;
    target: number;
    body: string;
    time: string;
  }[];
  lastSeq: number;
}

/** Every user (ids 1… until 64 ids in a row are unused) with friends, groups and inbox; presence and
 * delivery acks are left out (logins and acks legitimately change them). */
export async function snapshotStore(store: ChatStore): Promise<Map<number, UserSnapshot>> {
  const out = new Map<number, UserSnapshot>();
  let misses = 0;
  for (let id = 1; misses < 64; id++) {
    const user = await store.users.findById(id);
    if (user === undefined) {
      misses++;
      continue;
    }
    misses = 0;
    const [friends, groups, inbox, cursor] = await Promise.all([
      store.friends.list(id),
      store.groups.listForUser(id),
      store.messages.readInbox(id, 0, 1_000_000),
      store.messages.cursor(id),
    ]);
    out.set(id, {
      id,
      name: user.name,
      passwordHash: user.passwordHash,
      friends: friends.map((f) => ({ id: f.id, name: f.name })),
      groups: groups.map((g) => ({
        id: g.id,
        groupname: g.groupname,
        groupdesc: g.groupdesc,
        users: g.users.map((u) => ({ id: u.id, role: u.role })),
      })),
      inbox: inbox.map((e) => ({
        seq: e.seq,
        mid: e.mid,
        sender: e.sender,
        kind: e.kind,
        target: e.target,
        body: e.body,
        time: e.time,
      })),
      lastSeq: cursor.lastSeq,
    });
  }
  return out;
}

/**
 * `after` holds `before` unchanged. With `allowGrowth`, new users, friends, groups, members and
 * inbox entries may have been added (nothing changed or removed); without it the two are equal.
 */
export function expectPreserved(
  before: Map<number, UserSnapshot>,
  after: Map<number, UserSnapshot>,
  allowGrowth = false,
): void {
  if (!allowGrowth) {
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [id, b] of before) expect(after.get(id), `user ${id}`).toEqual(b);
    return;
  }
  for (const [id, b] of before) {
    const a = after.get(id);
    expect(a, `user ${id} still exists`).toBeDefined();
    expect({ name: a!.name, passwordHash: a!.passwordHash }).toEqual({
      name: b.name,
      passwordHash: b.passwordHash,
    });
    expect(a!.inbox.slice(0, b.inbox.length), `inbox of ${id}`).toEqual(b.inbox);
    for (const f of b.friends) expect(a!.friends).toContainEqual(f);
    for (const g of b.groups) {
      const ag = a!.groups.find((x) => x.id === g.id);
      expect(ag, `group ${g.id} of user ${id}`).toBeDefined();
      expect({ groupname: ag!.groupname, groupdesc: ag!.groupdesc }).toEqual({
        groupname: g.groupname,
        groupdesc: g.groupdesc,
      });
      for (const u of g.users) expect(ag!.users).toContainEqual(u);
    }
  }
}

/**
 * One chat server for the enclosing `describe` block: started before its tests, cleaned up
 * after. Returns a getter (the server exists only once the block's tests run).
 */
export function sharedServer(options: StartChatServerOptions): () => ChatServerProcess {
  let server: ChatServerProcess | undefined;
  beforeAll(async () => {
    server = await startChatServer(options);
  });
  afterAll(async () => {
    await server?.cleanup();
  });
  return () => {
    if (server === undefined) throw new Error('the shared chat server is not started yet');
    return server;
  };
}
