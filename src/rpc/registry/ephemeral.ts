import * as zookeeper from 'node-zookeeper-client';
import type { ZkSession } from './ZkSession.js';

/**
 * Makes `path` an ephemeral node of this session holding `data` (its parent must exist): creates
 * it, or sets its data when this session already owns it, or replaces a node left by an older
 * session of ours (same name, not yet expired): that one is stale and would vanish with it.
 */
export async function putEphemeral(session: ZkSession, path: string, data: globalThis.Buffer): Promise<void> {
  if (await session.create(path, data, zookeeper.CreateMode.EPHEMERAL)) return;
  const existing = await session.exists(path);
  if (existing !== null && !session.ownsEphemeral(existing)) {
    await session.remove(path);
    await session.create(path, data, zookeeper.CreateMode.EPHEMERAL);
  } else {
    await session.setData(path, data);
  }
}
