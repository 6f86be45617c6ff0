/**
 * What a gateway does with liveness from ZooKeeper (docs/DISTRIBUTED.md, "Failures"):
 * - another gateway's registry node is removed (it died, stopped, or lost its session): its
 *   presence keys are released and that incarnation fenced (RedisCluster.serverGone), so its
 *   users can log in again here within a session timeout instead of a presence TTL;
 * - our own session expired: ZooKeeper dropped our node and the survivors fence us, so every
 *   local session is closed and later claims use a new epoch (registered with the new session);
 * - a service provider is lost (connection dropped, or it left the registry): messages it
 *   committed may not have been pushed yet, so every local user's inbox is re-read at once.
 */
import { randomBytes } from 'node:crypto';
import type { RpcChannel, ZkSession } from '../../rpc/index.js';
import type { RedisCluster } from '../cluster/RedisCluster.js';
import { GatewayDirectory } from './GatewayRegistry.js';

/** A fresh presence epoch (one per ZooKeeper session of the gateway). */
export function newEpoch(): string {
  return randomBytes(6).toString('hex');
}

export interface GatewayLivenessOptions {
  session: ZkSession;
  root: string;
  cluster: RedisCluster;
  channel: RpcChannel;
  log: (level: 'info' | 'warn', message: string) => void;
}

export interface GatewayLiveness {
  /** Resolves once the first listing of the gateways has arrived (their removals count from then). */
  waitKnown(timeoutMs: number): Promise<void>;
  close(): void;
}

/** Starts watching. */
export function watchGatewayLiveness(options: GatewayLivenessOptions): GatewayLiveness {
  const { session, cluster, channel } = options;
  const gateways = new GatewayDirectory(session, options.root);
  const epochs = new Map<string, string>();
  gateways.on('added', (gateway) => epochs.set(gateway.id, gateway.epoch));
  gateways.on('updated', (gateway) => {
    // Same id, new epoch: restarted (or re-registered after its session expired) before its old
    // node went. The old incarnation is fenced and only its users are cleaned up.
    const old = epochs.get(gateway.id);
    epochs.set(gateway.id, gateway.epoch);
    if (old !== undefined && old !== gateway.epoch) void cluster.serverGone(gateway.id, old);
  });
  gateways.on('removed', (gateway) => {
    epochs.delete(gateway.id);
    void cluster.serverGone(gateway.id, gateway.epoch);
  });
  const onExpired = (): void => {
    cluster.dropAll('the ZooKeeper session of this gateway expired', newEpoch());
  };
  session.on('expired', onExpired);
  // Several providers lost in one turn (a node serving many services): one repair.
  let repairQueued = false;
  let stopped = false;
  channel.onProviderLost((key) => {
    if (repairQueued || stopped) return;
    repairQueued = true;
    setImmediate(() => {
      repairQueued = false;
      if (stopped) return;
      options.log('info', `service provider ${key} lost; re-reading the inboxes of online users`);
      cluster.repair();
    });
  });
  return {
    waitKnown: (timeoutMs) => gateways.waitKnown(timeoutMs),
    close: () => {
      stopped = true;
      session.off('expired', onExpired);
      gateways.close();
    },
  };
}
