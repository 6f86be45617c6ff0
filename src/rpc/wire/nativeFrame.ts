/**
 * The native wire format (documented in src/rpc/README.md):
 *
 *   connection preface (client → provider, then provider → client, once):
 *     "MRPC" 0x01 0x00 0x00 0x00            magic, version 1, three reserved zero bytes
 *   then frames, both directions:
 *     uint32 BE frameLen | uint16 BE metaLen | RpcMeta (protobuf, metaLen bytes) | message bytes
 *   where frameLen counts every byte after itself (so frameLen = 2 + metaLen + message length).
 *
 * RpcMeta is defined in protoSources.ts; it is encoded here by hand because it is on every call's
 * path and its request part (service + method) is constant per method, so it is encoded once.
 */
import type protobuf from 'protobufjs';
import { copyBytes } from './copyBytes.js';
import { encodeInto } from './messageWriter.js';
import {
  type Cursor,
  readLengthDelimited,
  readVarint32,
  skipField,
  varint32Size,
  writeVarint32,
} from './varint.js';

export const PREFACE = globalThis.Buffer.from([0x4d, 0x52, 0x50, 0x43, 0x01, 0x00, 0x00, 0x00]);
export const PREFACE_LENGTH = PREFACE.length;
/** The magic "MRPC" read as a big-endian uint32 (as a little-endian classic header size it is ~1.1e9). */
export const MAGIC_BE = 0x4d525043;
export const PROTOCOL_VERSION = 1;

export const FRAME_HEADER_LENGTH = 6;
/** Largest RpcMeta; error texts are cut to fit well inside it. */
export const MAX_META_LENGTH = 0xffff;
export const MAX_ERROR_TEXT_BYTES = 1024;

export const FrameKind = { REQUEST: 0, RESPONSE: 1, GOAWAY: 2 } as const;

/** Wire status numbers of RpcMeta.status. */
export const WireStatus = {
  OK: 0,
  UNKNOWN_SERVICE: 1,
  UNKNOWN_METHOD: 2,
  BAD_REQUEST: 3,
  HANDLER_ERROR: 4,
  DEADLINE_EXCEEDED: 5,
  UNAVAILABLE: 6,
  RESOURCE_EXHAUSTED: 7,
} as const;
export type WireStatusName = keyof typeof WireStatus;

/** A decoded RpcMeta. Decoders fill a reused instance, so copy what you keep. */
export interface RpcMeta {
  kind: number;
  callId: number;
  service: string;
  method: string;
  timeoutMs: number;
  status: number;
  error: string;
}

/**
 * Where fields 3 and 4 (service, method) sit in the decoded bytes, when they are adjacent as
 * `encodeNamePrefix` writes them: a provider compares these bytes with the previous call's
 * instead of decoding two strings per call. -1 when absent or not adjacent.
 */
export interface NameSpan {
  start: number;
  end: number;
}

export function newMeta(): RpcMeta {
  return { kind: 0, callId: 0, service: '', method: '', timeoutMs: 0, status: 0, error: '' };
}

/**
 * Something frames are appended to: `reserve` returns the write offset into `bytes`; `commit`
 * the end. `replaceBytes` adopts a grown copy of `bytes` made while encoding a message in place
 * (it holds everything written so far, committed or not).
 */
export interface FrameSink {
  readonly bytes: globalThis.Buffer;
  reserve(length: number): number;
  commit(end: number): void;
  replaceBytes(grown: globalThis.Buffer): void;
}

/** A message body: bytes already encoded, or a message encoded straight into the frame. */
export type FrameBody = Uint8Array | { type: protobuf.Type; message: object };

const utf8 = new TextEncoder();

/** RpcMeta fields 3 and 4 (service, method): constant per method, encoded once. */
export function encodeNamePrefix(service: string, method: string): Uint8Array {
  const s = utf8.encode(service);
  const m = utf8.encode(method);
  const out = new Uint8Array(2 + varint32Size(s.length) + s.length + varint32Size(m.length) + m.length);
  let p = 0;
  out[p++] = 0x1a;
  p = writeVarint32(out, p, s.length);
  out.set(s, p);
  p += s.length;
  out[p++] = 0x22;
  p = writeVarint32(out, p, m.length);
  out.set(m, p);
  return out;
}

function writeFrameHeader(b: globalThis.Buffer, p: number, metaLen: number, bodyLen: number): number {
  b.writeUInt32BE(2 + metaLen + bodyLen, p);
  b[p + 4] = metaLen >>> 8;
  b[p + 5] = metaLen & 0xff;
  return p + FRAME_HEADER_LENGTH;
}

/**
 * A request frame. With a message body the message is encoded in place; if protobufjs throws,
 * nothing is committed and the error propagates.
 */
export function writeRequestFrame(
  out: FrameSink,
  callId: number,
  namePrefix: Uint8Array,
  timeoutMs: number,
  body: FrameBody,
): void {
  const metaLen =
    1 + varint32Size(callId) + namePrefix.length + (timeoutMs > 0 ? 1 + varint32Size(timeoutMs) : 0);
  const start = out.reserve(FRAME_HEADER_LENGTH + metaLen + (body instanceof Uint8Array ? body.length : 0));
  const b = out.bytes;
  let p = start + FRAME_HEADER_LENGTH;
  b[p++] = 0x10;
  p = writeVarint32(b, p, callId);
  copyBytes(namePrefix, 0, namePrefix.length, b, p);
  p += namePrefix.length;
  if (timeoutMs > 0) {
    b[p++] = 0x28;
    p = writeVarint32(b, p, timeoutMs);
  }
  finishFrame(out, start, metaLen, p, body);
}

/** Writes `body` at `bodyAt`, then the frame header at `start` (its length is known only now); commits. */
function finishFrame(out: FrameSink, start: number, metaLen: number, bodyAt: number, body: FrameBody): void {
  let end: number;
  if (body instanceof Uint8Array) {
    copyBytes(body, 0, body.length, out.bytes, bodyAt);
    end = bodyAt + body.length;
  } else {
    end = encodeInto(body.type, body.message, out, bodyAt);
  }
  writeFrameHeader(out.bytes, start, metaLen, end - bodyAt);
  out.commit(end);
}

/** An OK response; a message body is encoded in place (see writeRequestFrame). */
export function writeResponseFrame(out: FrameSink, callId: number, body: FrameBody): void {
  const metaLen = 3 + varint32Size(callId);
  const start = out.reserve(FRAME_HEADER_LENGTH + metaLen + (body instanceof Uint8Array ? body.length : 0));
  const b = out.bytes;
  let p = start + FRAME_HEADER_LENGTH;
  b[p++] = 0x08;
  b[p++] = FrameKind.RESPONSE;
  b[p++] = 0x10;
  p = writeVarint32(b, p, callId);
  finishFrame(out, start, metaLen, p, body);
}

/** Error text as UTF-8, cut at a character boundary to MAX_ERROR_TEXT_BYTES. */
function errorBytes(text: string): globalThis.Buffer {
  const bytes = globalThis.Buffer.from(text, 'utf8');
  if (bytes.length <= MAX_ERROR_TEXT_BYTES) return bytes;
  let end = MAX_ERROR_TEXT_BYTES;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/** A response without a message: status != OK and its text; or a GOAWAY (kind 2, callId 0). */
export function writeStatusFrame(
  out: FrameSink,
  kind: number,
  callId: number,
  status: number,
  errorText: string,
): void {
  const text = errorBytes(errorText);
  const metaLen =
    2 +
    (callId > 0 ? 1 + varint32Size(callId) : 0) +
    (status > 0 ? 2 : 0) +
    (text.length > 0 ? 1 + varint32Size(text.length) + text.length : 0);
  let p = out.reserve(FRAME_HEADER_LENGTH + metaLen);
  const b = out.bytes;
  p = writeFrameHeader(b, p, metaLen, 0);
  b[p++] = 0x08;
  b[p++] = kind;
  if (callId > 0) {
    b[p++] = 0x10;
    p = writeVarint32(b, p, callId);
  }
  if (status > 0) {
    b[p++] = 0x30;
    b[p++] = status;
  }
  if (text.length > 0) {
    b[p++] = 0x3a;
    p = writeVarint32(b, p, text.length);
    text.copy(b, p);
    p += text.length;
  }
  out.commit(p);
}

const cursor: Cursor = { bytes: new Uint8Array(0), pos: 0, end: 0 };

/**
 * Decodes RpcMeta from `bytes[start, end)` into `out`. Throws RpcError('PROTOCOL_ERROR'). With
 * `names`, service and method are not decoded (left '') and their span is reported instead.
 */
export function decodeMeta(
  bytes: globalThis.Buffer,
  start: number,
  end: number,
  out: RpcMeta,
  names: NameSpan | null = null,
): void {
  out.kind = 0;
  out.callId = 0;
  out.service = '';
  out.method = '';
  out.timeoutMs = 0;
  out.status = 0;
  out.error = '';
  const c = cursor;
  c.bytes = bytes;
  c.pos = start;
  c.end = end;
  let serviceTag = -1;
  let serviceEnd = -1;
  let methodTag = -1;
  let methodEnd = -1;
  while (c.pos < end) {
    const tagAt = c.pos;
    const tag = readVarint32(c);
    const wireType = tag & 7;
    const field = tag >>> 3;
    if (wireType === 0 && field !== 3 && field !== 4 && field !== 7) {
      const v = readVarint32(c);
      if (field === 1) out.kind = v;
      else if (field === 2) out.callId = v;
      else if (field === 5) out.timeoutMs = v;
      else if (field === 6) out.status = v;
    } else if (wireType === 2 && (field === 3 || field === 4 || field === 7)) {
      const s = readLengthDelimited(c);
      if (names !== null && field !== 7) {
        if (field === 3) {
          serviceTag = tagAt;
          serviceEnd = c.pos;
        } else {
          methodTag = tagAt;
          methodEnd = c.pos;
        }
        continue;
      }
      const text = bytes.toString('utf8', s, c.pos);
      if (field === 3) out.service = text;
      else if (field === 4) out.method = text;
      else out.error = text;
    } else {
      skipField(c, wireType);
    }
  }
  c.bytes = EMPTY;
  if (names !== null) {
    const adjacent = serviceTag >= 0 && methodTag === serviceEnd;
    names.start = adjacent ? serviceTag : -1;
    names.end = adjacent ? methodEnd : -1;
  }
}

const EMPTY = new Uint8Array(0);

/** Whole RpcMeta to bytes (tests and tools; the hot paths use the write*Frame functions). */
export function encodeMeta(meta: RpcMeta): Uint8Array {
  const s = utf8.encode(meta.service);
  const m = utf8.encode(meta.method);
  const e = utf8.encode(meta.error);
  const parts: number[] = [];
  const varintField = (tag: number, v: number): void => {
    if (v === 0) return;
    parts.push(tag);
    const tmp = new Uint8Array(5);
    const n = writeVarint32(tmp, 0, v);
    for (let i = 0; i < n; i++) parts.push(tmp[i]!);
  };
  const bytesField = (tag: number, v: Uint8Array): void => {
    if (v.length === 0) return;
    varintField(tag, v.length);
    for (const x of v) parts.push(x);
  };
  varintField(0x08, meta.kind);
  varintField(0x10, meta.callId);
  bytesField(0x1a, s);
  bytesField(0x22, m);
  varintField(0x28, meta.timeoutMs);
  varintField(0x30, meta.status);
  bytesField(0x3a, e);
  return Uint8Array.from(parts);
}
