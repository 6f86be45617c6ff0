import type { LegacyCodec } from './codecs.js';
import { Limits } from './errno.js';
import { ProtocolError } from './errors.js';
import { decodeJsonBytes, encodeJsonBytes } from './jsonBytes.js';
import { LegacyFrameSplitter } from './LegacyFrameSplitter.js';

/**
 * Per-connection decoder of the classic stream: `push(chunk)`, then `next()` until undefined.
 * Each message is decoded right away (the splitter's view is only valid until the next call).
 * Throws ProtocolError (FRAME_TOO_LARGE, BAD_UTF8, BAD_JSON): the server sends what it can and closes.
 */
export class LegacyStreamDecoder {
  private readonly splitter: LegacyFrameSplitter;
  private failure: ProtocolError | null = null;

  constructor(maxMessageBytes: number = Limits.MAX_MESSAGE_BYTES) {
    this.splitter = new LegacyFrameSplitter(maxMessageBytes);
  }

  get bufferedBytes(): number {
    return this.splitter.bufferedBytes;
  }

  push(chunk: Uint8Array): void {
    this.splitter.push(chunk);
  }

  /**
   * The next decoded JSON value, or undefined when more bytes are needed (JSON never yields
   * undefined). After an error the stream is out of sync for good, so the decoder stays failed.
   */
  next(): unknown {
    if (this.failure !== null) throw this.failure;
    try {
      const bytes = this.splitter.next();
      return bytes === undefined ? undefined : decodeJsonBytes(bytes);
    } catch (e) {
      if (e instanceof ProtocolError) this.failure = e;
      throw e;
    }
  }
}

/** Classic client: JSON text followed by one `\0`, in both directions. */
export const legacyCodec: LegacyCodec = {
  kind: 'legacy',
  createDecoder: (maxMessageBytes) => new LegacyStreamDecoder(maxMessageBytes),
  encode: (msg) => encodeJsonBytes(msg, 'nul-terminated'),
};
