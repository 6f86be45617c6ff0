/**
 * Pingpong echo server (muduo examples/pingpong): echoes every byte back.
 * `--impl lib` uses this library, `--impl plain` uses node:net directly. Prints `ready PORT`.
 */
import { createServer } from 'node:net';
import { TcpServer } from '../../src/net/index.js';
import { parseArgs } from '../lib/args.js';

const args = parseArgs(
  process.argv.slice(2),
  { impl: 'lib', port: '0' },
  'usage: server --impl lib|plain [--port 0]\n',
);
const port = Number(args.port);

if (args.impl === 'lib') {
  const server = new TcpServer({ name: 'pingpong', host: '127.0.0.1', port, noDelay: true });
  server.setMessageCallback((conn, buffer) => conn.send(buffer));
  const address = await server.start();
  process.stdout.write(`ready ${address.port}\n`);
  process.once('SIGTERM', () => void server.stop({ graceMs: 0 }).then(() => process.exit(0)));
} else {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
  server.listen(port, '127.0.0.1', () => {
    const bound = server.address();
    process.stdout.write(`ready ${typeof bound === 'object' && bound ? bound.port : port}\n`);
  });
  process.once('SIGTERM', () => process.exit(0));
}
