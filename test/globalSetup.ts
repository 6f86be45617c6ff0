/**
 * Runs once before the suite: fails fast, with a clear message, when a service the tests
 * need is down (MariaDB and Redis are started by the machine; ZooKeeper and Nginx by the
 * project's own scripts).
 */
import { connect } from 'node:net';

function probe(port: number, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(3000);
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    const fail = (): void => {
      socket.destroy();
      reject(new Error(`${name} is not reachable on 127.0.0.1:${port}; start it (see README "Tests")`));
    };
    socket.once('error', fail);
    socket.once('timeout', fail);
  });
}

export async function setup(): Promise<void> {
  await probe(3306, 'MariaDB');
  await probe(6379, 'Redis');
}
