/**
 * The classic C++ mprpc request (docs/PROTOCOL.md §10):
 *   uint32 LE headerSize | mprpc.RpcHeader (headerSize bytes) | args (RpcHeader.args_size bytes)
 * and the reply is the bare serialized response, delimited by the provider closing the connection.
 */
import { RpcError } from '../errors.js';
import {
  type Cursor,
  readLengthDelimited,
  readVarint32,
  skipField,
  varint32Size,
  writeVarint32,
} from './varint.js';

/** No real RpcHeader comes near this; a bigger size means the peer does not speak the format. */
export const MAX_CLASSIC_HEADER = 64 * 1024;

export interface ClassicHeader {
  service: string;
  method: string;
  argsSize: number;
}

/** Decodes RpcHeader from `bytes[start, end)`. Throws RpcError('PROTOCOL_ERROR'). */
export function decodeClassicHeader(bytes: globalThis.Buffer, start: number, end: number): ClassicHeader {
  const c: Cursor = { bytes, pos: start, end };
  const out: ClassicHeader = { service: '', method: '', argsSize: 0 };
  while (c.pos < end) {
    const tag = readVarint32(c);
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (wireType === 2 && (field === 1 || field === 2)) {
      const s = readLengthDelimited(c);
      const text = bytes.toString('utf8', s, c.pos);
      if (field === 1) out.service = text;
      else out.method = text;
    } else if (wireType === 0 && field === 3) {
      out.argsSize = readVarint32(c);
    } else {
      skipField(c, wireType);
    }
  }
  return out;
}

/** The whole classic request: size, header and args, ready to write. */
export function encodeClassicRequest(service: string, method: string, args: Uint8Array): globalThis.Buffer {
  const s = globalThis.Buffer.from(service, 'utf8');
  const m = globalThis.Buffer.from(method, 'utf8');
  const headerSize =
    1 +
    varint32Size(s.length) +
    s.length +
    1 +
    varint32Size(m.length) +
    m.length +
    (args.length > 0 ? 1 + varint32Size(args.length) : 0);
  if (headerSize > MAX_CLASSIC_HEADER) throw new RpcError('BAD_REQUEST', 'service/method names too long');
  const out = globalThis.Buffer.allocUnsafe(4 + headerSize + args.length);
  out.writeUInt32LE(headerSize, 0);
  let p = 4;
  out[p++] = 0x0a;
  p = writeVarint32(out, p, s.length);
  p += s.copy(out, p);
  out[p++] = 0x12;
  p = writeVarint32(out, p, m.length);
  p += m.copy(out, p);
  if (args.length > 0) {
    out[p++] = 0x18;
    p = writeVarint32(out, p, args.length);
  }
  out.set(args, p);
  return out;
}
