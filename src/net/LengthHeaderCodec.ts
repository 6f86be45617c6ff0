import type { Buffer } from './Buffer.js';
import { NetError } from './errors.js';
import type { TcpConnection } from './TcpConnection.js';

/** Default largest accepted frame payload: 1 MiB. */
export const kDefaultMaxFrameSize = 1024 * 1024;
const kHeaderLen = 4;

/**
 * `frame` is a view into the connection's input buffer, valid only during the call: decode
 * it, or copy it (`Buffer.from(frame)`) to keep or re-send it.
 */
export type FrameCallback = (conn: TcpConnection, frame: globalThis.Buffer, receiveTime: number) => void;
export type CodecErrorCallback = (conn: TcpConnection, error: NetError) => void;

export interface LengthHeaderCodecOptions {
  /** Largest payload accepted; a bigger (or negative) length closes the connection. Default 1 MiB. */
  maxFrameSize?: number;
  /**
   * Told about a bad frame. The connection is then force-closed unless the handler already
   * began closing it (e.g. `shutdown()` after sending an error reply). Default: nothing.
   */
  onError?: CodecErrorCallback;
}

/**
 * Frames = int32 big-endian payload length + payload (muduo's LengthHeaderCodec). Use
 * `codec.onMessage` as the connection's message callback. Many frames in one read and one
 * frame spread over many reads both work; the buffer never holds more than one maximal frame
 * plus one read, because an oversized header is rejected before its payload arrives.
 */
export class LengthHeaderCodec {
  readonly maxFrameSize: number;
  private readonly onError: CodecErrorCallback | undefined;

  constructor(
    private readonly onFrame: FrameCallback,
    options: LengthHeaderCodecOptions = {},
  ) {
    this.maxFrameSize = options.maxFrameSize ?? kDefaultMaxFrameSize;
    this.onError = options.onError;
  }

  readonly onMessage = (conn: TcpConnection, buffer: Buffer, receiveTime: number): void => {
    while (buffer.readableBytes() >= kHeaderLen && !conn.disconnected) {
      const len = buffer.peekInt32();
      if (len < 0 || len > this.maxFrameSize) {
        buffer.retrieveAll();
        this.onError?.(
          conn,
          new NetError('FRAME_TOO_LARGE', `frame length ${len} outside 0..${this.maxFrameSize}`),
        );
        // An error handler may have started a graceful close (to flush an error reply); else force it.
        if (conn.connected) conn.forceClose();
        return;
      }
      if (buffer.readableBytes() < kHeaderLen + len) return;
      buffer.retrieve(kHeaderLen);
      const frame = buffer.peek(len);
      buffer.retrieve(len);
      this.onFrame(conn, frame, receiveTime);
    }
  };

  /** Sends one frame: header and payload in a single write. */
  send(conn: TcpConnection, payload: Uint8Array | string): void {
    conn.send(LengthHeaderCodec.encode(payload));
  }

  /** The wire bytes of one frame. */
  static encode(payload: Uint8Array | string): globalThis.Buffer {
    if (typeof payload === 'string') {
      const len = globalThis.Buffer.byteLength(payload);
      const out = globalThis.Buffer.allocUnsafe(kHeaderLen + len);
      out.writeInt32BE(len, 0);
      out.write(payload, kHeaderLen);
      return out;
    }
    const out = globalThis.Buffer.allocUnsafe(kHeaderLen + payload.length);
    out.writeInt32BE(payload.length, 0);
    out.set(payload, kHeaderLen);
    return out;
  }
}
