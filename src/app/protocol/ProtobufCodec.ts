import protobuf from 'protobufjs';
import { adler32 } from './adler32.js';
import { ProtocolError } from './errors.js';
import { allocBytes, FRAME_HEADER_BYTES, readUint32BE, writeUint32BE } from './framing.js';

/**
 * muduo's ProtobufCodec payload layout (big-endian ints):
 *   int32 nameLen | typeName (nameLen bytes, last one \0) | protobuf bytes | int32 adler32
 * The checksum covers nameLen|typeName|protobuf bytes and starts from 1 (zlib's Adler-32).
 * The 4-byte frame length in front belongs to the framed codec; it is written here only on
 * request (`framed`), to save a copy on the send path.
 */
const INT32 = 4;
/** nameLen + shortest name ("X\0") + checksum: muduo's kMinMessageLen. */
export const MUDUO_MIN_PAYLOAD = INT32 + 2 + INT32;
// No real type name is this long; refusing earlier keeps string building bounded.
const MAX_TYPE_NAME = 512;

export interface MuduoPayload {
  typeName: string;
  /** The serialized protobuf message: a view into the payload, not a copy. */
  body: Uint8Array;
}

export function encodeMuduoPayload(typeName: string, body: Uint8Array, framed = false): Uint8Array {
  const nameLen = typeName.length + 1;
  if (nameLen < 2 || nameLen > MAX_TYPE_NAME + 1) {
    throw new ProtocolError('UNENCODABLE', `protobuf type name '${typeName}' has a bad length`);
  }
  const head = framed ? FRAME_HEADER_BYTES : 0;
  const size = INT32 + nameLen + body.length + INT32;
  const out = allocBytes(head + size);
  if (framed) writeUint32BE(out, 0, size);
  writeUint32BE(out, head, nameLen);
  let p = head + INT32;
  for (let i = 0; i < typeName.length; i++) {
    const c = typeName.charCodeAt(i);
    if (c === 0 || c > 0x7e)
      throw new ProtocolError('UNENCODABLE', 'protobuf type names are printable ASCII');
    out[p++] = c;
  }
  out[p++] = 0;
  out.set(body, p);
  p += body.length;
  writeUint32BE(out, p, adler32(out, head, p));
  return out;
}

/** Splits and checks a payload; the checks run in muduo's order (length, checksum, nameLen). */
export function decodeMuduoPayload(payload: Uint8Array): MuduoPayload {
  const len = payload.length;
  if (len < MUDUO_MIN_PAYLOAD) {
    throw new ProtocolError(
      'TRUNCATED',
      `protobuf payload of ${len} bytes is shorter than ${MUDUO_MIN_PAYLOAD}`,
    );
  }
  const end = len - INT32;
  if (readUint32BE(payload, end) !== adler32(payload, 0, end)) {
    throw new ProtocolError('BAD_CHECKSUM', 'protobuf payload checksum mismatch');
  }
  const nameLen = readUint32BE(payload, 0) | 0; // int32 on the wire: a huge value is negative
  if (nameLen < 2 || nameLen > end - INT32) {
    throw new ProtocolError('BAD_NAME_LEN', `protobuf nameLen ${nameLen} out of range`);
  }
  const nameEnd = INT32 + nameLen - 1;
  if (payload[nameEnd] !== 0)
    throw new ProtocolError('BAD_NAME_LEN', 'protobuf type name is not NUL-terminated');
  if (nameLen - 1 > MAX_TYPE_NAME) throw new ProtocolError('UNKNOWN_TYPE', 'protobuf type name too long');
  let typeName = '';
  for (let i = INT32; i < nameEnd; i++) typeName += String.fromCharCode(payload[i]!);
  return { typeName, body: payload.subarray(nameEnd + 1, end) };
}

export interface DecodedProtobuf {
  typeName: string;
  type: protobuf.Type;
  message: protobuf.Message;
}

function collectTypes(ns: protobuf.NamespaceBase, into: Map<string, protobuf.Type>): void {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) into.set(nested.fullName.slice(1), nested);
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) collectTypes(nested, into);
  }
}

/**
 * muduo ProtobufCodec over any protobufjs Root. Types are addressed by full name without the
 * leading dot ("chat.LoginRequest"); `accept` limits which ones may appear on the wire (default:
 * every message type of the root). Shared by the chat codec and, later, the RPC layer.
 * Only ProtocolError escapes encode/decode.
 */
export class ProtobufCodec {
  private readonly types = new Map<string, protobuf.Type>();

  constructor(root: protobuf.Root, accept?: readonly string[]) {
    root.resolveAll();
    const all = new Map<string, protobuf.Type>();
    collectTypes(root, all);
    if (accept === undefined) {
      for (const [name, type] of all) this.types.set(name, type);
      return;
    }
    for (const name of accept) {
      const type = all.get(name);
      if (type === undefined) throw new Error(`protobuf type '${name}' is not in the root`);
      this.types.set(name, type);
    }
  }

  /** The type for a wire name such as "chat.LoginRequest", or undefined. */
  type(typeName: string): protobuf.Type | undefined {
    return this.types.get(typeName);
  }

  typeNames(): IterableIterator<string> {
    return this.types.keys();
  }

  /** Plain object (or message) → muduo payload; with `framed`, the 4-byte length is prepended. */
  encode(typeName: string, value: object, framed = false): Uint8Array {
    const type = this.types.get(typeName);
    if (type === undefined) throw new ProtocolError('UNENCODABLE', `unknown protobuf type '${typeName}'`);
    // encode() trusts its input; verify() catches wrong field types before they turn into garbage.
    const problem = type.verify(value as Record<string, unknown>);
    if (problem !== null) throw new ProtocolError('UNENCODABLE', `${typeName}: ${problem}`);
    let body: Uint8Array;
    try {
      body = type.encode(value as Record<string, unknown>).finish();
    } catch (cause) {
      throw new ProtocolError('UNENCODABLE', `${typeName}: cannot encode`, { cause });
    }
    return encodeMuduoPayload(typeName, body, framed);
  }

  decode(payload: Uint8Array): DecodedProtobuf {
    const { typeName, body } = decodeMuduoPayload(payload);
    const type = this.types.get(typeName);
    if (type === undefined) throw new ProtocolError('UNKNOWN_TYPE', `unknown protobuf type '${typeName}'`);
    try {
      return { typeName, type, message: type.decode(body) };
    } catch (cause) {
      throw new ProtocolError('BAD_PROTOBUF', `${typeName}: malformed protobuf message`, { cause });
    }
  }
}
