/**
 * The classic registry lookup, `/<Service>/<Method>` → "ip:port", with the answer cached and a
 * watch to drop it when the node changes or goes (the classic consumer asked ZooKeeper on every
 * call). A missing node is reported as UNKNOWN_SERVICE or UNKNOWN_METHOD.
 */
import * as zookeeper from 'node-zookeeper-client';
import { type HostPort, parseHostPort } from '../address.js';
import { RpcError } from '../errors.js';
import { classicMethodPath, classicServicePath } from '../registry/layout.js';
import type { ZkSession } from '../registry/ZkSession.js';

export class ClassicDirectory {
  private readonly cache = new Map<string, HostPort>();

  constructor(private readonly session: ZkSession) {
    session.on('session', () => this.cache.clear());
    session.start();
  }

  async lookup(service: string, method: string): Promise<HostPort> {
    const path = classicMethodPath(service, method);
    const cached = this.cache.get(path);
    if (cached !== undefined) return cached;
    const session = this.session;
    const node = await session.getData(path, (event: zookeeper.Event) => {
      if (event.getType() !== zookeeper.Event.NODE_CHILDREN_CHANGED) this.cache.delete(path);
    });
    if (node === null) {
      const hasService = (await session.exists(classicServicePath(service))) !== null;
      throw hasService
        ? new RpcError('UNKNOWN_METHOD', `no provider registered ${path}`, { mayHaveExecuted: false })
        : new RpcError('UNKNOWN_SERVICE', `no service /${service} in ZooKeeper`, { mayHaveExecuted: false });
    }
    const address = parseHostPort(node.data.toString('utf8'));
    if (address === null) {
      throw new RpcError('UNAVAILABLE', `${path} holds '${node.data.toString('utf8')}', not ip:port`, {
        mayHaveExecuted: false,
      });
    }
    this.cache.set(path, address);
    return address;
  }

  /** Forget a cached address that failed (the next call asks ZooKeeper again). */
  invalidate(service: string, method: string): void {
    this.cache.delete(classicMethodPath(service, method));
  }
}
