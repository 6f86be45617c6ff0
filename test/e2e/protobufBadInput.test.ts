/**
 * Protobuf frames that are broken in each way docs/PROTOCOL.md §8 names — checksum mismatch, unknown
 * type name, truncated payload — get an ERROR (errno 3) and close only that connection.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { adler32 } from '../../src/app/protocol/adler32.js';
import { ChatProtobufCodec } from '../../src/app/protocol/chatProtobuf.js';
import { type ChatServerProcess, startChatServer } from '../helpers/chatServer.js';
import { Clients } from './support.js';

const codec = new ChatProtobufCodec();

/** A well-formed PING frame (length header included), to be broken by each test. */
function pingFrame(): Buffer {
  return Buffer.from(codec.encode({ msgid: 18, t: 7, reqid: 'r1' }));
}

/** Recomputes the frame length header and the Adler-32 after a payload edit. */
function reframe(payloadWithoutChecksum: Buffer): Buffer {
  const out = Buffer.alloc(4 + payloadWithoutChecksum.length + 4);
  out.writeUInt32BE(payloadWithoutChecksum.length + 4, 0);
  payloadWithoutChecksum.copy(out, 4);
  out.writeUInt32BE(adler32(payloadWithoutChecksum), 4 + payloadWithoutChecksum.length);
  return out;
}

const broken: Record<string, () => Buffer> = {
  'checksum mismatch': () => {
    const frame = pingFrame();
    frame[frame.length - 1]! ^= 0xff;
    return frame;
  },
  'unknown type name': () => {
    const name = Buffer.from('chat.NoSuchType\0');
    const head = Buffer.alloc(4);
    head.writeInt32BE(name.length, 0);
    return reframe(Buffer.concat([head, name, Buffer.from([0x08, 0x01])]));
  },
  'truncated payload': () => {
    // The frame length is honest but the payload stops inside the protobuf message body.
    const frame = pingFrame();
    const payload = frame.subarray(4, frame.length - 4);
    return reframe(payload.subarray(0, payload.length - 2));
  },
};

describe('broken protobuf frames', () => {
  let server: ChatServerProcess;
  const clients = new Clients(() => server);

  beforeAll(async () => {
    server = await startChatServer({ db: 'sqlite' });
  });
  afterEach(() => clients.closeAll());
  afterAll(async () => {
    await server?.cleanup();
  });

  test('a well-formed frame is answered (control)', async () => {
    const raw = await clients.raw();
    await raw.write(pingFrame());
    expect(await raw.next()).toMatchObject({ msgid: 19, t: 7, reqid: 'r1' });
  });

  test.each(Object.keys(broken))(
    '%s: ERROR errno 3, that connection closes, others keep working',
    async (kind) => {
      const bystander = await clients.loggedIn('protobuf');
      const raw = await clients.raw();
      await raw.write(pingFrame());
      expect(await raw.next()).toMatchObject({ msgid: 19 });
      await raw.write(broken[kind]!());
      const error = await raw.next();
      expect(error).toMatchObject({ msgid: 20, errno: 3 });
      expect(String(error.errmsg)).not.toBe('');
      await raw.closed;
      expect(raw.isClosed).toBe(true);
      const pong = await bystander.client.ping(42);
      expect(pong).toMatchObject({ msgid: 19, t: 42 });
    },
  );
});
