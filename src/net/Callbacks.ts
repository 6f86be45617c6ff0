/**
 * Every callback type of the library, declared in one place (muduo's Callbacks.h).
 * Connection-scoped callbacks receive the connection first, so one function can serve many.
 */
import type { Buffer } from './Buffer.js';
import type { TcpConnection } from './TcpConnection.js';

export type TimerCallback = () => void;
export type Functor = () => void;

/** Fired once when a connection comes up and once when it goes down (check `conn.connected`). */
export type ConnectionCallback = (conn: TcpConnection) => void;

/**
 * Fired when bytes arrive. `buffer` holds everything received and not yet retrieved: consume
 * what forms complete messages and leave the rest for the next call.
 */
export type MessageCallback = (conn: TcpConnection, buffer: Buffer, receiveTime: number) => void;

/** Fired when the connection's pending output has been handed entirely to the kernel. */
export type WriteCompleteCallback = (conn: TcpConnection) => void;

/** Fired when pending output crosses the high-water mark upwards. */
export type HighWaterMarkCallback = (conn: TcpConnection, pendingBytes: number) => void;

/** @internal Used by TcpServer/TcpClient to forget a connection. */
export type CloseCallback = (conn: TcpConnection) => void;

/** Fired for socket-level errors that do not have a better home (the connection still closes). */
export type ErrorCallback = (conn: TcpConnection, error: Error) => void;

export const defaultConnectionCallback: ConnectionCallback = () => {};

/** muduo discards unread input by default; so do we. */
export const defaultMessageCallback: MessageCallback = (_conn, buffer) => {
  buffer.retrieveAll();
};
