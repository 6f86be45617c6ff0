/** Direct ZooKeeper access for the registry tests (node-zookeeper-client, no src/rpc code). */
import { connect as netConnect } from 'node:net';
import * as zookeeper from 'node-zookeeper-client';
import { TcpProxy } from '../helpers/tcpProxy.js';

export async function connectRaw(
  connectString: string,
  extra: Record<string, unknown> = {},
  timeoutMs = 10_000,
): Promise<zookeeper.Client> {
  // sessionId/sessionPassword are real client options that @types/node-zookeeper-client omits.
  const options = { sessionTimeout: 4000, spinDelay: 100, ...extra } as unknown as zookeeper.Option;
  const client = zookeeper.createClient(connectString, options);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error('ZooKeeper connect timed out'));
    }, timeoutMs);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.connect();
  });
  return client;
}

export function closeRaw(client: zookeeper.Client): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2000);
    client.once('disconnected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.close();
  });
}

/**
 * Ends someone else's session, as ZooKeeper's own tests do: connect with its id and password,
 * then close it. Both requests go out in one write on a raw socket (jute wire format). The owner
 * reconnects at once when the server drops it, and now and then takes the session back before
 * our connect is answered: the server then drops our connection with no reply (our close may or
 * may not have gone through), and we try again until a reply says the session is gone.
 * The session's ephemeral nodes go, and the owner hears "expired" when it reconnects (or, when it
 * took the session back just before our close, once its read timeout drops its dead connection).
 */
export async function expireSession(
  connectString: string,
  credentials: { sessionId: Buffer; password: Buffer },
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const reply = await connectAndClose(connectString, credentials);
    // ConnectResponse: len, protocolVersion, timeOut (0 = that session was already gone).
    if (reply.length >= 12 && reply.readInt32BE(8) > 0) return;
    // After a dropped attempt the close may still have gone through: a session gone is the goal.
    if (reply.length > 0 && attempt > 1) return;
    if (reply.length > 0 || attempt === 5) {
      throw new Error(`expireSession: session was not live (reply ${reply.toString('hex')})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function connectAndClose(
  connectString: string,
  credentials: { sessionId: Buffer; password: Buffer },
): Promise<Buffer> {
  const [host, port] = connectString.split(':');
  const connectRequest = Buffer.alloc(4 + 45);
  let p = connectRequest.writeInt32BE(45, 0);
  p = connectRequest.writeInt32BE(0, p); // protocolVersion
  p = connectRequest.writeBigInt64BE(0n, p); // lastZxidSeen
  p = connectRequest.writeInt32BE(4000, p); // timeOut
  p += credentials.sessionId.copy(connectRequest, p); // sessionId
  p = connectRequest.writeInt32BE(credentials.password.length, p);
  p += credentials.password.copy(connectRequest, p); // passwd
  connectRequest.writeUInt8(0, p); // readOnly
  const closeSession = Buffer.alloc(12);
  closeSession.writeInt32BE(8, 0);
  closeSession.writeInt32BE(1, 4); // xid
  closeSession.writeInt32BE(-11, 8); // OpCode.closeSession
  return new Promise<Buffer>((resolve, reject) => {
    const socket = netConnect({ host: host!, port: Number(port) });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('expireSession: no answer from ZooKeeper'));
    }, 5000);
    socket.on('connect', () => socket.write(Buffer.concat([connectRequest, closeSession])));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

export function getNode(
  client: zookeeper.Client,
  path: string,
): Promise<{ data: string; stat: zookeeper.Stat } | null> {
  return new Promise((resolve, reject) =>
    client.getData(path, (error, data, stat) => {
      if (error && (error as zookeeper.Exception).getCode?.() === zookeeper.Exception.NO_NODE) resolve(null);
      else if (error) reject(error);
      else resolve({ data: data?.toString() ?? '', stat });
    }),
  );
}

export function children(client: zookeeper.Client, path: string): Promise<string[]> {
  return new Promise((resolve, reject) =>
    client.getChildren(path, (error, list) => {
      if (error && (error as zookeeper.Exception).getCode?.() === zookeeper.Exception.NO_NODE) resolve([]);
      else if (error) reject(error);
      else resolve(list);
    }),
  );
}

/** Polls `check` every 20 ms until it returns true; throws after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms: number,
  label: string,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs `fn` with a fresh client, then closes it. The tests do not keep one long-lived client:
 * node-zookeeper-client sometimes fails to reconnect after a server restart (ZkSession has a
 * watchdog for that; a test helper should not need one).
 */
export async function withClient<T>(
  connectString: string,
  fn: (client: zookeeper.Client) => Promise<T>,
): Promise<T> {
  const client = await connectRaw(connectString, {}, 5000);
  try {
    return await withTimeout(fn(client), 5000, 'ZooKeeper query');
  } finally {
    await closeRaw(client);
  }
}

export interface ZkProxy {
  /** "127.0.0.1:port" of the proxy: give it to the client under test. */
  readonly connectString: string;
  /** Drops every proxied connection and refuses new ones: the client sees ZooKeeper vanish. */
  cut(): void;
  restore(): void;
  /** ZooKeeper stops answering on the open connections, which stay open (TcpProxy.mute). */
  mute(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of ZooKeeper. Cutting it takes one client away from ZooKeeper while
 * everyone else still reaches it: then that client's session can be ended without it racing
 * to take the session back.
 */
export async function startZkProxy(target: string): Promise<ZkProxy> {
  const [host, port] = target.split(':');
  const proxy = await TcpProxy.start(host!, Number(port));
  return {
    connectString: `127.0.0.1:${proxy.port}`,
    cut: () => proxy.outage(),
    restore: () => proxy.restore(),
    mute: () => proxy.mute(),
    close: () => proxy.close(),
  };
}
