/**
 * Two defects of node-zookeeper-client 1.1.3, patched per client instance (nothing global):
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
 */
import type { Client } from 'node-zookeeper-client';

interface ConnectionManagerInternals {
  state: number;
  connectTimeout: number;
  pendingBuffer: unknown;
  socket?: { destroy(): void };
  onSocketClosed: (...args: unknown[]) => unknown;
  onSocketData: (...args: unknown[]) => unknown;
  onSocketConnected: (...args: unknown[]) => unknown;
}

/** ConnectionManager.STATES.CONNECTING */
const CONNECTING = 1;

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
  const onSocketConnected = manager.onSocketConnected;
  manager.onSocketConnected = function (this: ConnectionManagerInternals, ...args: unknown[]) {
    const socket = this.socket;
    const timer = setTimeout(() => {
      if (this.state === CONNECTING && this.socket === socket) socket?.destroy();
    }, this.connectTimeout);
    timer.unref();
    return onSocketConnected.apply(this, args);
  };
  const onSocketData = manager.onSocketData;
  manager.onSocketData = function (this: ConnectionManagerInternals, ...args: unknown[]) {
    try {
      return onSocketData.apply(this, args);
    } catch {
      this.pendingBuffer = null;
      this.socket?.destroy();
      return undefined;
    }
  };
}
