/**
 * The baseline for bench/chat: the same framed-JSON chat protocol (register, login, one-to-one
 * chat with ACK and push) written directly on node:net, with no persistence and no library —
 * so the bench shows what durability and the library cost. Not a real server: no validation,
 * no offline delivery. Prints `listening on HOST:PORT`.
 */
import { createServer, type Socket } from 'node:net';
import { parseArgs } from '../lib/args.js';

const args = parseArgs(process.argv.slice(2), { port: '0' }, 'usage: baselineServer [--port 0]\n');

interface User {
  name: string;
  password: string;
  socket: Socket | null;
  seq: number;
}

const users: User[] = [];
let nextMid = 1;

function sendFrame(socket: Socket, message: object): void {
  const payload = Buffer.from(JSON.stringify(message));
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(payload.length, 0);
  socket.write(Buffer.concat([header, payload]));
}

function handle(socket: Socket, session: { id: number }, m: Record<string, unknown>): void {
  const reqid = m.reqid;
  switch (m.msgid) {
    case 4: {
      users.push({ name: String(m.name), password: String(m.password), socket: null, seq: 0 });
      sendFrame(socket, { msgid: 5, errno: 0, id: users.length, reqid });
      return;
    }
    case 1: {
      const user = users[Number(m.id) - 1];
      if (!user || user.password !== m.password) {
        sendFrame(socket, { msgid: 2, errno: 1, errmsg: 'id or password is invalid!', reqid });
        return;
      }
      user.socket = socket;
      session.id = Number(m.id);
      sendFrame(socket, {
        msgid: 2,
        errno: 0,
        id: session.id,
        name: user.name,
        friends: [],
        groups: [],
        reqid,
      });
      return;
    }
    case 6: {
      const to = users[Number(m.toid) - 1];
      const from = users[session.id - 1];
      const mid = nextMid++;
      sendFrame(socket, { msgid: 11, errno: 0, mid, cmid: m.cmid, reqid });
      if (to?.socket && from) {
        to.seq += 1;
        sendFrame(to.socket, {
          msgid: 6,
          mid,
          seq: to.seq,
          id: session.id,
          name: from.name,
          toid: m.toid,
          msg: m.msg,
          time: m.time ?? '',
        });
      }
      return;
    }
    case 18:
      sendFrame(socket, { msgid: 19, t: m.t, reqid });
      return;
    default:
      return;
  }
}

const server = createServer({ noDelay: true }, (socket) => {
  const session = { id: 0 };
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const len = pending.readUInt32BE(0);
      if (pending.length < 4 + len) break;
      const message = JSON.parse(pending.subarray(4, 4 + len).toString()) as Record<string, unknown>;
      pending = pending.subarray(4 + len);
      handle(socket, session, message);
    }
  });
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    const user = users[session.id - 1];
    if (user?.socket === socket) user.socket = null;
  });
});
server.listen(Number(args.port), '127.0.0.1', () => {
  const bound = server.address();
  process.stdout.write(`listening on 127.0.0.1:${typeof bound === 'object' && bound ? bound.port : 0}\n`);
});
process.once('SIGTERM', () => process.exit(0));
