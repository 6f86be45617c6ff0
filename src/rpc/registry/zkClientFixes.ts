/**
 * Defects of node-zookeeper-client 1.1.3, patched per client instance (nothing global):
 *
 * 1. Bytes of a frame cut short by a lost connection stay in `pendingBuffer` and are glued in
 *    front of the next connection's first reply. The connect handshake then waits for bytes that
 *    never come (the client never reconnects) or decodes garbage. Fix: forget them on close.
 * 2. A reply it cannot decode throws inside the socket's 'data' handler, which is an uncaught
 *    exception: it would take the whole process down. Fix: catch it and drop the connection,
 *    which makes the client reconnect.
 * 3. Its connect timeout stops at the TCP connect. A server that accepts the connection but never
 *    answers the handshake (seen right after a ZooKeeper restart) leaves it waiting for ever.
 *    Fix: drop a connection still handshaking after the connect timeout.
 * 4. It has no read timeout (the Java client's): it never notices a server that stops answering.
 *    ZooKeeper 3.8 does exactly that when the session is closed from another connection just
 *    after this client took it back (expireSession in the tests, a rival with our credentials):
 *    the session is gone, but our fresh connection stays open and every request on it, pings
 *    included, is dropped without a reply. Fix: like the Java client, drop a connection that has
 *    heard nothing for 2/3 of the session timeout (the library pings after 1/3 idle); the
 *    reconnect then learns that the session expired.
 */
import type { Client } from 'node-zookeeper-client';

interface SocketInternals {
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

interface ConnectionManagerInternals {
  state: number;
  connectTimeout: number;
  /** The negotiated session timeout once connected. */
  sessionTimeout: number;
  pendingBuffer: unknown;
  socket?: SocketInternals;
  onSocketClosed: (...args: unknown[]) => unknown;
  onSocketData: (...args: unknown[]) => unknown;
  onSocketConnected: (...args: unknown[]) => unknown;
}

/** ConnectionManager.STATES.CONNECTING, CONNECTED, CONNECTED_READ_ONLY */
const CONNECTING = 1;
const CONNECTED = 2;
const CONNECTED_READ_ONLY = 3;

/** Applies the fixes when the library looks as expected; otherwise leaves the client alone. */
export function patchZkClient(client: Client): void {
  const manager = (client as unknown as { connectionManager?: ConnectionManagerInternals }).connectionManager;
  if (
    manager === undefined ||
    typeof manager.onSocketClosed !== 'function' ||
    typeof manager.onSocketData !== 'function' ||
    typeof manager.onSocketConnected !== 'function'
  ) {
    return;
  }
  // The manager binds these when it connects, so instance properties take effect.
  const onSocketClosed = manager.onSocketClosed;
  manager.onSocketClosed = function (this: ConnectionManagerInternals, ...args: unknown[]) {
    this.pendingBuffer = null;
    return onSocketClosed.apply(this, args);
  };
  let lastHeard = Date.now();
  const onSocketConnected = manager.onSocketConnected;
  manager.onSocketConnected = function (this: ConnectionManagerInternals, ...args: unknown[]) {
    const socket = this.socket;
    const timer = setTimeout(() => {
      if (this.state === CONNECTING && this.socket === socket) socket?.destroy();
    }, this.connectTimeout);
    timer.unref();
    if (socket !== undefined) watchReads(this, socket);
    return onSocketConnected.apply(this, args);
  };
  /** Fix 4: one check per connection, a few times per read timeout, until the socket closes. */
  const watchReads = (self: ConnectionManagerInternals, socket: SocketInternals): void => {
    lastHeard = Date.now();
    const readTimeout = (): number => Math.floor((self.sessionTimeout * 2) / 3);
    const check = setInterval(
      () => {
        const live = self.state === CONNECTED || self.state === CONNECTED_READ_ONLY;
        if (self.socket !== socket) clearInterval(check);
        else if (live && Date.now() - lastHeard > readTimeout()) socket.destroy();
      },
      Math.max(50, Math.floor(readTimeout() / 4)),
    );
    check.unref();
    socket.once('close', () => clearInterval(check));
  };
  const onSocketData = manager.onSocketData;
  manager.onSocketData = function (this: ConnectionManagerInternals, ...args: unknown[]) {
    lastHeard = Date.now();
    try {
      return onSocketData.apply(this, args);
    } catch {
      this.pendingBuffer = null;
      this.socket?.destroy();
      return undefined;
    }
  };
}
