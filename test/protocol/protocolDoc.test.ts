/**
 * docs/PROTOCOL.md is what client authors copy from: every example in it must decode, with the
 * server's own codecs, to the message it claims to be, in every encoding it shows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/app/cluster/paths.js';
import { adler32 } from '../../src/app/protocol/adler32.js';
import { jsonCodec, legacyCodec, protobufCodec } from '../../src/app/protocol/codecs.js';
import { ALL_MSG_IDS, msgIdName } from '../../src/app/protocol/msgid.js';

const DOC = readFileSync(join(packageRoot(), 'docs/PROTOCOL.md'), 'utf8');

interface Example {
  json: string;
  framed: string | undefined;
  protobuf: string | undefined;
  legacy: string | undefined;
}

/** Every ```text block with a `JSON` line, its lines keyed by their first word. */
function examples(): Example[] {
  const found: Example[] = [];
  for (const block of DOC.matchAll(/```text\n([\s\S]*?)```/g)) {
    const lines = new Map<string, string>();
    for (const line of (block[1] ?? '').split('\n')) {
      const match = line.match(/^(JSON|framed|protobuf|legacy) +(.*)$/);
      if (match) lines.set(match[1]!, match[2]!);
    }
    const json = lines.get('JSON');
    if (json === undefined) continue;
    found.push({
      json,
      framed: lines.get('framed'),
      protobuf: lines.get('protobuf'),
      legacy: lines.get('legacy'),
    });
  }
  return found;
}

const hexBytes = (text: string): Buffer => {
  const compact = text.replace(/\s+/g, '');
  expect(compact, 'hex digits only').toMatch(/^([0-9a-f]{2})+$/);
  return Buffer.from(compact, 'hex');
};

const all = examples();

describe('docs/PROTOCOL.md', () => {
  it('has an example of every msgid, each in JSON, framed JSON and framed protobuf', () => {
    const covered = new Set(all.map((example) => (JSON.parse(example.json) as { msgid: number }).msgid));
    expect([...ALL_MSG_IDS].filter((id) => !covered.has(id))).toEqual([]);
    for (const example of all) {
      expect(example.framed, example.json).toBeDefined();
      expect(example.protobuf, example.json).toBeDefined();
    }
    for (const id of ALL_MSG_IDS) expect(DOC).toContain(msgIdName(id));
  });

  it.each(all.map((example) => [example.json, example] as const))('framed JSON of %s', (_, example) => {
    const [, lengthHex, text] = example.framed!.match(/^([0-9a-f]{8}) (.*)$/) ?? [];
    const payload = Buffer.from(text ?? '', 'utf8');
    expect(Number.parseInt(lengthHex ?? '', 16)).toBe(payload.length);
    const expected = JSON.parse(example.json) as object;
    expect(jsonCodec.decodePayload(payload)).toEqual(expected);
    expect(
      Buffer.from(jsonCodec.encode(expected)).equals(Buffer.concat([hexBytes(lengthHex!), payload])),
    ).toBe(true);
  });

  it.each(all.map((example) => [example.json, example] as const))('framed protobuf of %s', (_, example) => {
    const frame = hexBytes(example.protobuf!);
    expect(frame.readUInt32BE(0)).toBe(frame.length - 4);
    const expected = JSON.parse(example.json) as object;
    expect(protobufCodec.decodePayload(frame.subarray(4))).toEqual(expected);
    expect(Buffer.from(protobufCodec.encode(expected)).equals(frame)).toBe(true);
  });

  it('gives legacy forms that the legacy decoder splits into the same msgid', () => {
    const legacy = all.filter((example) => example.legacy !== undefined);
    expect(legacy.length).toBeGreaterThanOrEqual(10);
    for (const example of legacy) {
      expect(example.legacy!.endsWith('\\0'), example.legacy).toBe(true);
      const decoder = legacyCodec.createDecoder();
      decoder.push(Buffer.from(`${example.legacy!.slice(0, -2)}\0`, 'utf8'));
      const decoded = decoder.next();
      expect(decoded, example.legacy).toBeDefined();
      expect((decoded as { msgid: number }).msgid).toBe(
        (JSON.parse(example.json) as { msgid: number }).msgid,
      );
    }
  });

  it("labels the DELIVER_ACK byte walk-through with the example's own bytes", () => {
    const walk = DOC.match(/```text\n(0000001a[\s\S]*?)```/)?.[1] ?? '';
    const bytes = walk
      .split('\n')
      .map((line) => line.split(/\s+/)[0] ?? '')
      .join('');
    const deliverAck = all.find((example) => example.json === '{"msgid":17,"seq":4}');
    expect(bytes).toBe(deliverAck!.protobuf!.replace(/\s+/g, ''));
  });

  it("states the muduo test vector's checksum correctly", () => {
    const frame = hexBytes(
      '0000002b 0000000c 6d7564756f2e517565727900 080112094368656e205368756f1a0852756e6e696e673f c9370b1e',
    );
    expect(DOC).toContain('c9370b1e');
    expect(adler32(frame, 4, frame.length - 4)).toBe(frame.readUInt32BE(frame.length - 4));
  });
});
