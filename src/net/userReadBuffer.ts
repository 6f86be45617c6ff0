import type { Socket } from 'node:net';

/** Called with the number of bytes Node read into the shared buffer; return false to stop reading. */
export type ReadCallback = (nread: number, buffer: Uint8Array) => boolean;

/**
 * One read buffer for every socket of the process (muduo's stack `extrabuf`, made shared:
 * reads are delivered one at a time on the loop thread and consumed before the next one).
 * Reading into it skips Node's allocate-a-Buffer-per-read path.
 */
export const sharedReadBuffer: globalThis.Buffer = globalThis.Buffer.allocUnsafe(64 * 1024);

/** The `onread` option for sockets we construct ourselves (TcpClient), a public Node API. */
export function onreadOption(callback: ReadCallback): { buffer: Uint8Array; callback: ReadCallback } {
  return { buffer: sharedReadBuffer, callback };
}

interface UserReadSlots {
  kBuffer: symbol;
  kBufferCb: symbol;
  kBufferGen: symbol;
}

let slots: UserReadSlots | null | undefined;

function findSlots(socket: Socket): UserReadSlots | null {
  const byName = new Map<string, symbol>();
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    if (sym.description) byName.set(sym.description, sym);
  }
  const kBuffer = byName.get('kBuffer');
  const kBufferCb = byName.get('kBufferCb');
  const kBufferGen = byName.get('kBufferGen');
  return kBuffer && kBufferCb && kBufferGen ? { kBuffer, kBufferCb, kBufferGen } : null;
}

interface HandleWithUserBuffer {
  useUserBuffer?: (buffer: Uint8Array) => void;
}

/**
 * Gives an accepted socket the same `onread` behaviour `new net.Socket({ onread })` has.
 * net.Server offers no such option, so this sets the slots Node's constructor would have set,
 * found by their symbol descriptions. The socket must not have started reading
 * (`pauseOnConnect: true`). Returns false when this Node does not look as expected; the
 * caller then falls back to 'data' events.
 */
export function installUserReadBuffer(socket: Socket, callback: ReadCallback): boolean {
  if (slots === undefined) slots = findSlots(socket);
  const handle = (socket as unknown as { _handle?: HandleWithUserBuffer | null })._handle;
  if (slots === null || !handle || typeof handle.useUserBuffer !== 'function') return false;
  const record = socket as unknown as Record<symbol, unknown>;
  if (record[slots.kBuffer] !== null || record[slots.kBufferCb] !== null) return false;
  record[slots.kBuffer] = sharedReadBuffer;
  record[slots.kBufferCb] = callback;
  handle.useUserBuffer(sharedReadBuffer);
  return true;
}
