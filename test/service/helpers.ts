/**
 * In-process service-layer tests: a real SQLite store in a temp dir (migrated, as the server opens
 * it), an in-process ChatServer over it, and a recording SessionTransport for ChatService itself.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChatStore, createChatStore } from '../../src/app/model/ChatStore.js';
import { ChatServer, type ChatServerOptions } from '../../src/app/server/ChatServer.js';
import { createLogger } from '../../src/app/server/logger.js';
import type { CodecKind, SessionTransport } from '../../src/app/service/ChatSession.js';
import { createLocalServices } from '../../src/app/services/LocalMessageService.js';
import { migrate } from '../../src/app/store/migrations.js';
import { SqliteDriver, type SqliteOptions } from '../../src/app/store/SqliteDriver.js';
import { RawSocket } from '../e2e/support.js';

export interface TempStore {
  store: ChatStore;
  path: string;
  /** Closes the store and removes its directory. */
  dispose(): Promise<void>;
}

export async function openTempStore(options: SqliteOptions = {}): Promise<TempStore> {
  const dir = mkdtempSync(join(tmpdir(), 'chat-service-'));
  const path = join(dir, 'chat.db');
  const driver = await SqliteDriver.open(path, options);
  await migrate(driver);
  const store = createChatStore(driver);
  return {
    store,
    path,
    dispose: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Holds every COMMIT of a store opened with `gate.array` as its commitGate (SqliteOptions), the
 * way a slow fsync would, until released.
 */
export class CommitGate {
  readonly array = new Int32Array(new SharedArrayBuffer(8));

  constructor() {
    this.open();
  }

  close(): void {
    Atomics.store(this.array, 0, 0);
  }

  open(): void {
    Atomics.store(this.array, 0, 1);
    Atomics.notify(this.array, 0);
  }

  /** COMMITs that reached the gate so far. */
  get arrivals(): number {
    return Atomics.load(this.array, 1);
  }

  /** Resolves once `count` COMMITs have reached the gate (the worker thread signals it). */
  async arrived(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = this.arrivals;
      if (seen >= count) return;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`only ${seen} of ${count} commits reached the gate`);
      await waitAsync(this.array, 1, seen, left).value;
    }
  }
}

/** Atomics.waitAsync (Node 20 has it; the project's lib setting predates it). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number, t: number): { value: Promise<string> | string };
  }
).waitAsync;

export interface InProcessServer {
  server: ChatServer;
  port: number;
  connect(): Promise<RawSocket>;
  stop(): Promise<void>;
}

const quiet = createLogger({ level: 'silent' });

export async function startInProcessServer(
  store: ChatStore,
  options: Partial<ChatServerOptions> = {},
): Promise<InProcessServer> {
  const server = new ChatServer(({ onBatch }) => createLocalServices(store, { onBatch }), {
    port: 0,
    logger: quiet,
    ...options,
  });
  const address = await server.start();
  const sockets: RawSocket[] = [];
  return {
    server,
    port: address.port,
    connect: async () => {
      const s = await RawSocket.connect('127.0.0.1', address.port);
      sockets.push(s);
      return s;
    },
    stop: async () => {
      for (const s of sockets) s.destroy();
      await server.stop(1000);
    },
  };
}

/** A SessionTransport that records what the service sends and how it steers input. */
export class RecordingTransport implements SessionTransport {
  readonly sent: Record<string, unknown>[] = [];
  pauses = 0;
  resumes = 0;
  closed = false;
  private waiters: {
    match: (m: Record<string, unknown>) => boolean;
    resolve: (m: Record<string, unknown>) => void;
  }[] = [];

  constructor(
    readonly kind: CodecKind = 'json',
    readonly peer = 'test',
  ) {}

  send(message: object): void {
    const m = message as Record<string, unknown>;
    this.sent.push(m);
    const at = this.waiters.findIndex((w) => w.match(m));
    if (at >= 0) this.waiters.splice(at, 1)[0]!.resolve(m);
  }

  close(): void {
    this.closed = true;
  }

  pauseInput(): void {
    this.pauses++;
  }

  resumeInput(): void {
    this.resumes++;
  }

  /** The first message sent (before or after this call) that matches. */
  waitFor(
    match: (m: Record<string, unknown>) => boolean,
    timeoutMs = 10_000,
  ): Promise<Record<string, unknown>> {
    const found = this.sent.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no matching message sent')), timeoutMs);
      this.waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }
}
