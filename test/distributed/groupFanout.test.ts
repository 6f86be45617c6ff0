/**
 * Group fan-out across message nodes (docs/DISTRIBUTED.md, "Group messages"), with real
 * processes: the owner of a group's partition stores each group message and its group_fanout
 * rows and acknowledges; the owners of the members' partitions append their inboxes. One message
 * node here never drives its fan-outs (CHAT_TEST_FANOUT_HOLD, as if it died right after its
 * commits) and is then SIGKILLed: the survivor's sweep fans them out, each once.
 */

import { hostname } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import type { ChatPush } from '../../src/app/client/types.js';
import { SERVICE_NAMES } from '../../src/app/distributed/serviceProto.js';
import { partitionKey, partitionOf } from '../../src/app/store/partitions.js';
import { RpcChannel } from '../../src/rpc/index.js';
import { expectSeqs, login, register, type User, uniqueName } from '../e2e/support.js';
import { type DistributedDeployment, startDistributed } from '../helpers/chatServer.js';
import { openTestDriver } from '../store/harness.js';

let unit: DistributedDeployment;
const open: ChatClient[] = [];

beforeAll(async () => {
  unit = await startDistributed({
    gateways: 2,
    services: ['user,friend,group', 'message', 'message'],
    serviceEnv: [undefined, { CHAT_TEST_FANOUT_HOLD: '1' }, undefined],
  });
}, 90_000);

afterAll(async () => {
  await unit?.cleanup();
});

afterEach(async () => {
  for (const c of open.splice(0)) c.destroy();
});

async function connect(gateway: number): Promise<ChatClient> {
  const g = unit.gateways[gateway]!;
  const c = await ChatClient.connect({
    host: g.host,
    port: g.port,
    requestTimeoutMs: 20_000,
    connectTimeoutMs: 15_000,
  });
  open.push(c);
  return c;
}

describe('group messages fanned out per member partition', () => {
  test('a message node SIGKILLed after storing group messages, before fanning them out: the survivor fans them out, every member gets each once, in order, within 5 s', async () => {
    const held = unit.services[1]!;
    const survivor = unit.services[2]!;
    const nodeName = (p: typeof held) => `${hostname()}:${p.pid}`;
    const sender = await connect(0);
    const us = await register(sender);
    await login(sender, us);
    const driver = await openTestDriver(unit.dbUrl);
    const routing = new RpcChannel({ zookeeper: unit.zookeeper, registryRoot: unit.registryRoot });
    const store = await unit.openStore();
    try {
      // A group whose partition the held node takes: a message to a group of one (no member to
      // fan out to) takes the group's partition on the node the gateway routes it to.
      let gid = 0;
      for (let tries = 0; tries < 20 && gid === 0; tries++) {
        const g = await sender.createGroup(uniqueName('fan'), 'kill');
        expect((await sender.groupChat(g.groupid, 'alone')).errno).toBe(0);
        const owner = (await store.messages.partitionOwners()).get(partitionOf(g.groupid))!.owner;
        if (owner === nodeName(held)) gid = g.groupid;
      }
      expect(gid, "a group in the held node's partition").toBeGreaterThan(0);

      // Six members on both gateways, in partitions routed to the survivor (the held node would
      // append members routed to itself in the message's own transaction): the routing as the
      // nodes see it, from the registry.
      await routing.waitForProviders(SERVICE_NAMES.message, 2, 15_000);
      const routedToHeld = (id: number): boolean =>
        routing
          .affinityProvider(SERVICE_NAMES.message, partitionKey(partitionOf(id)))
          ?.endsWith(`:${held.port}`) === true;
      const members: { client: ChatClient; user: User }[] = [];
      for (let i = 0; members.length < 6; i++) {
        const client = await connect(i % 2);
        const user = await register(client);
        if (routedToHeld(user.id)) continue;
        await login(client, user);
        expect((await client.joinGroup(gid)).errno).toBe(0);
        members.push({ client, user });
      }
      const sent = 5;
      const acks = await Promise.all(
        Array.from({ length: sent }, (_, i) => sender.groupChat(gid, `g${i}`, { cmid: `fan-kill-${i}` })),
      );
      expect(acks.map((a) => a.errno)).toEqual(Array(sent).fill(0));
      const mids = acks.map((a) => a.mid!);
      // Stored and acknowledged; the members' entries wait in group_fanout, one row per partition.
      const [pending] = await driver.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM group_fanout WHERE mid IN (${mids.map(() => '?').join(', ')})`,
        mids,
      );
      expect(Number(pending!.n)).toBe(sent * members.length);

      const killedAt = performance.now();
      await held.kill();
      const arrivals: number[] = [];
      const received = await Promise.all(
        members.map(async ({ client }) => {
          const pushes: ChatPush[] = await client.waitForPushes(sent, 15_000);
          arrivals.push(performance.now() - killedAt);
          return pushes;
        }),
      );
      process.stdout.write(
        `group fan-out after the storing node's kill: last member's pushes ${Math.round(Math.max(...arrivals))} ms after the kill\n`,
      );
      expect(Math.max(...arrivals)).toBeLessThan(5000);
      for (const pushes of received) {
        expectSeqs(pushes, 1, sent);
        expect(pushes.map((p) => p.msg)).toEqual(Array.from({ length: sent }, (_, i) => `g${i}`));
        expect(pushes.map((p) => p.mid)).toEqual(mids);
        expect(pushes.every((p) => p.msgid === 10 && p.groupid === gid && p.id === us.id)).toBe(true);
      }
      const [left] = await driver.query<{ n: number }>('SELECT COUNT(*) AS n FROM group_fanout');
      expect(Number(left!.n)).toBe(0);

      // The group's next message goes to the survivor, which takes the group's partition.
      expect((await sender.groupChat(gid, 'after', { cmid: 'fan-kill-after' })).errno).toBe(0);
      for (const { client, user } of members) {
        const [next] = await client.waitForPushes(1, 15_000);
        expect(next).toMatchObject({ seq: sent + 1, msg: 'after' });
        // The store holds each once: no duplicate, no gap.
        const inbox = await store.messages.readInbox(user.id, 0, 100);
        expect(inbox.map((e) => e.seq)).toEqual(Array.from({ length: sent + 1 }, (_, i) => i + 1));
        expect(new Set(inbox.map((e) => e.mid)).size).toBe(sent + 1);
      }
      expect((await store.messages.partitionOwners()).get(partitionOf(gid))!.owner).toBe(nodeName(survivor));
    } finally {
      await routing.close();
      await store.close();
      await driver.close();
    }
  }, 120_000);
});
