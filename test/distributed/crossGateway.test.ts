/**
 * The distributed chat server as a unit: two gateways, the user/friend/group services in one
 * process and two message-service processes, all found through ZooKeeper. Users on different
 * gateways chat one-to-one and in groups, live and offline; pushes go only to the gateway
 * holding the recipient; `mprpc list` shows the whole unit.
 */
import { execFile } from 'node:child_process';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ChatClient } from '../../src/app/client/ChatClient.js';
import type { ChatPush } from '../../src/app/client/types.js';
import { distPath } from '../../src/app/cluster/paths.js';
import { chatServiceDefinition, SERVICE_NAMES } from '../../src/app/distributed/serviceProto.js';
import type { MessageServiceRpc, UserServiceRpc } from '../../src/app/distributed/wireTypes.js';
import { partitionKey, partitionOf } from '../../src/app/store/partitions.js';
import { ClassicRpcChannel, createStub, RpcChannel } from '../../src/rpc/index.js';
import { barrier, expectSeqs, login, register, type User, uniqueName, within } from '../e2e/support.js';
import { type DistributedDeployment, startDistributed } from '../helpers/chatServer.js';

const run = promisify(execFile);

let unit: DistributedDeployment;
const open: ChatClient[] = [];

beforeAll(async () => {
  unit = await startDistributed({ gateways: 2, services: ['user,friend,group', 'message', 'message'] });
}, 90_000);

afterAll(async () => {
  await unit?.cleanup();
});

afterEach(async () => {
  for (const c of open.splice(0)) c.destroy();
});

async function connect(gateway: number, codec: 'json' | 'protobuf' = 'json'): Promise<ChatClient> {
  const g = unit.gateways[gateway]!;
  const c = await ChatClient.connect({
    host: g.host,
    port: g.port,
    codec,
    requestTimeoutMs: 20_000,
    connectTimeoutMs: 15_000,
  });
  open.push(c);
  return c;
}

describe('two gateways, services in separate processes', () => {
  test('one-to-one across gateways, live both ways; offline messages arrive at a login on the other gateway', async () => {
    const a = await connect(0, 'protobuf');
    const b = await connect(1, 'json');
    const ua = await register(a);
    const ub = await register(b);
    await login(a, ua);
    await login(b, ub);
    expect(await a.sendChat(ub.id, 'a→b on gateway 2')).toMatchObject({ msgid: 11, errno: 0 });
    const [toB] = await b.waitForPushes(1, 15_000);
    expect(toB).toMatchObject({
      msgid: 6,
      seq: 1,
      id: ua.id,
      name: ua.name,
      toid: ub.id,
      msg: 'a→b on gateway 2',
    });
    expect(await b.sendChat(ua.id, 'b→a on gateway 1')).toMatchObject({ errno: 0 });
    const [toA] = await a.waitForPushes(1, 15_000);
    expect(toA).toMatchObject({ msgid: 6, seq: 1, id: ub.id, toid: ua.id, msg: 'b→a on gateway 1' });
    b.deliverAck();
    await barrier(b);
    await b.close();

    // B is offline: messages wait in its inbox and come at its next login, on gateway 1 now.
    for (let i = 0; i < 5; i++) expect((await a.sendChat(ub.id, `offline ${i}`)).errno).toBe(0);
    const again = await connect(0, 'json');
    await login(again, ub, 1);
    const offline = await again.waitForPushes(5, 15_000);
    expectSeqs(offline, 2, 6);
    expect(offline.map((p) => p.msg)).toEqual([0, 1, 2, 3, 4].map((i) => `offline ${i}`));
  });

  test('group chat across gateways: every member on either gateway gets each message, in one order', async () => {
    const members = await Promise.all([0, 1, 1].map((g) => connect(g)));
    const users: User[] = [];
    for (const c of members) {
      const u = await register(c);
      await login(c, u);
      users.push(u);
    }
    const created = await members[0]!.createGroup(uniqueName('g'), 'across gateways');
    expect(created).toMatchObject({ msgid: 14, errno: 0 });
    for (const c of members.slice(1)) expect((await c.joinGroup(created.groupid)).errno).toBe(0);
    // Senders on both gateways, interleaved.
    const sends = [];
    for (let i = 0; i < 10; i++) {
      const k = i % 2 === 0 ? 0 : 1;
      sends.push(members[k]!.groupChat(created.groupid, `m${i} from ${k}`));
    }
    expect((await Promise.all(sends)).every((ack) => ack.errno === 0)).toBe(true);
    // Member 2 (gateway 2) sent nothing: it gets all 10; members 0 and 1 get the other's 5.
    const third = await members[2]!.waitForPushes(10, 15_000);
    expectSeqs(third, 1, 10);
    expect(new Set(third.map((p) => p.msg)).size).toBe(10);
    const first = await members[0]!.waitForPushes(5, 15_000);
    const second = await members[1]!.waitForPushes(5, 15_000);
    expect(first.every((p) => p.id === users[1]!.id && p.msgid === 10 && p.groupid === created.groupid)).toBe(
      true,
    );
    expect(second.every((p) => p.id === users[0]!.id)).toBe(true);
    // One order for everyone: the relative order of member 1's messages is the same at 0 and 2.
    const fromOne = (ps: typeof third) => ps.filter((p) => p.id === users[1]!.id).map((p) => p.mid);
    expect(fromOne(first)).toEqual(fromOne(third));

    // Offline group members get the group's messages at login, on the other gateway.
    await members[2]!.close();
    expect((await members[0]!.groupChat(created.groupid, 'while 2 was away')).errno).toBe(0);
    const back = await connect(0, 'protobuf');
    await login(back, users[2]!, 10);
    const [missed] = await back.waitForPushes(1, 15_000);
    expect(missed).toMatchObject({ msgid: 10, seq: 11, groupid: created.groupid, msg: 'while 2 was away' });
  });

  test("a group message is acknowledged once it is in every member's inbox, members fanned out to the other node too", async () => {
    const routing = new RpcChannel({ zookeeper: unit.zookeeper, registryRoot: unit.registryRoot });
    const store = await unit.openStore();
    try {
      await routing.waitForProviders(SERVICE_NAMES.message, 2, 15_000);
      const nodeOf = (id: number) =>
        routing.affinityProvider(SERVICE_NAMES.message, partitionKey(partitionOf(id)));
      const sender = await connect(0);
      const su = await register(sender);
      await login(sender, su);
      const gid = (await sender.createGroup(uniqueName('g'), 'fanned out')).groupid;
      // Members whose partitions the other node owns: their entries come by fan-out.
      const members: User[] = [];
      while (members.length < 3) {
        const c = await connect(members.length % 2);
        const u = await register(c);
        if (nodeOf(u.id) === nodeOf(gid)) continue;
        await login(c, u);
        expect((await c.joinGroup(gid)).errno).toBe(0);
        members.push(u);
      }
      for (let i = 1; i <= 10; i++) {
        expect((await sender.groupChat(gid, `g${i}`)).errno).toBe(0);
        // Read at once, no waiting: the ack came after the fan-outs.
        const seqs = await Promise.all(members.map(async (m) => (await store.messages.cursor(m.id)).lastSeq));
        expect(seqs).toEqual([i, i, i]);
      }
    } finally {
      await store.close();
      await routing.close();
    }
  });

  test("pushes go only to the recipient's gateway: never broadcast; a one-to-one push never back to the sender's", async () => {
    const watcher = new Redis(unit.redisUrl, { lazyConnect: true });
    const seen: string[] = [];
    try {
      await watcher.connect();
      await watcher.psubscribe(`${unit.redisPrefix}:server:*`);
      watcher.on('pmessage', (_pattern: string, channel: string) => seen.push(channel));
      // a and c on gateway 1, b on gateway 2.
      const [a, b, c] = [await connect(0), await connect(1), await connect(0)];
      const [ua, ub, uc] = [await register(a), await register(b), await register(c)];
      for (const [client, user] of [
        [a, ua],
        [b, ub],
        [c, uc],
      ] as const)
        await login(client, user);
      const gateway = (k: number) => `${unit.redisPrefix}:server:${unit.gateways[k]!.serverId}`;
      const published = async (channels: string[], what: string) => {
        await within(
          (async () => {
            while (!channels.every((ch) => seen.includes(ch))) await new Promise((r) => setTimeout(r, 20));
          })(),
          10_000,
          what,
        );
        // Barrier: Redis answers this PING after every message it had queued for the watcher, so
        // a publish to another channel in the same batch would be in `seen` by now.
        await watcher.ping();
      };
      // One-to-one: c's push (on a's gateway) is pushed by that gateway itself and published
      // nowhere; b's goes to gateway 2's channel only.
      expect((await a.sendChat(uc.id, 'to c')).errno).toBe(0);
      expect((await a.sendChat(ub.id, 'to b')).errno).toBe(0);
      await b.waitForPushes(1, 15_000);
      await c.waitForPushes(1, 15_000);
      await published([gateway(1)], "the watcher to see the publish to b's gateway");
      expect(seen).toEqual([gateway(1)]);

      // A group message: members of partitions the group's node owns get their entries with the
      // message (the sender's gateway pushes its own, as for one-to-one); the others are fanned
      // out by their partitions' owners after the ack, whose pushes go to the member's gateway,
      // the sender's included. Either way each push goes to its member's gateway only, once.
      seen.length = 0;
      const group = await a.createGroup(uniqueName('g'), 'routing');
      expect((await b.joinGroup(group.groupid)).errno).toBe(0);
      expect((await c.joinGroup(group.groupid)).errno).toBe(0);
      expect((await a.groupChat(group.groupid, 'to b and c')).errno).toBe(0);
      expect((await b.waitForPushes(1, 15_000))[0]).toMatchObject({ msgid: 10, seq: 2, msg: 'to b and c' });
      expect((await c.waitForPushes(1, 15_000))[0]).toMatchObject({ msgid: 10, seq: 2, msg: 'to b and c' });
      await published([gateway(1)], "the watcher to see the publish to b's gateway");
      expect(seen.filter((ch) => ch === gateway(1))).toHaveLength(1);
      expect(seen.filter((ch) => ch !== gateway(1) && ch !== gateway(0))).toEqual([]);
      expect(seen.filter((ch) => ch === gateway(0)).length).toBeLessThanOrEqual(1);
    } finally {
      watcher.disconnect();
    }
  });

  test('mprpc list shows the whole unit: four services, the message service on two nodes', async () => {
    const { stdout } = await run(
      process.execPath,
      [distPath('rpc/bin/mprpc.js'), 'list', '--zookeeper', unit.zookeeper, '--root', unit.registryRoot],
      { timeout: 30_000 },
    );
    for (const name of ['UserService', 'FriendService', 'GroupService', 'MessageService']) {
      expect(stdout).toContain(`chat.svc.${name}`);
    }
    const section = stdout.slice(stdout.indexOf('chat.svc.MessageService'));
    const nextService = section.indexOf('chat.svc.', 'chat.svc.MessageService'.length);
    const messageProviders = (nextService < 0 ? section : section.slice(0, nextService)).match(
      /127\.0\.0\.1:\d+/g,
    );
    expect(new Set(messageProviders).size).toBe(2);
    expect(stdout).toContain('Submit');
  });

  test('the classic mprpc format reaches the user service: Register and Login found through the classic znodes', async () => {
    // What the C++ consumer does: look /UserService/<Method> up in ZooKeeper, one connection
    // per call, the classic header, the bare response read until the provider closes.
    const classic = new ClassicRpcChannel({ zookeeper: unit.zookeeper });
    try {
      const users = createStub<UserServiceRpc>(classic, chatServiceDefinition('user'));
      const name = uniqueName('classic');
      const registered = await users.Register({ name, password: 'classic-pw' }, { timeoutMs: 15_000 });
      expect(registered.errno).toBe(0);
      expect(registered.id).toBeGreaterThan(0);
      const taken = await users.Register({ name, password: 'x' }, { timeoutMs: 15_000 });
      expect(taken.errno).toBe(7);
      const ok = await users.Login({ id: registered.id, password: 'classic-pw' }, { timeoutMs: 15_000 });
      expect(ok).toMatchObject({ errno: 0, found: true, id: registered.id, name });
      const wrong = await users.Login({ id: registered.id, password: 'nope' }, { timeoutMs: 15_000 });
      expect(wrong.found).toBe(false);
      // The same account, through a gateway.
      const client = await connect(1, 'protobuf');
      await login(client, { id: registered.id, name, password: 'classic-pw' });
    } finally {
      await classic.close();
    }
  });

  test('one writer per inbox: eight senders on both gateways write to one recipient through one node, which takes its partition once', async () => {
    const recipient = await connect(1);
    const ur = await register(recipient);
    await login(recipient, ur);
    const senders = await Promise.all(Array.from({ length: 8 }, (_, i) => connect(i % 2)));
    const users = await Promise.all(senders.map((c) => register(c)));
    await Promise.all(senders.map((c, i) => login(c, users[i]!)));
    const store = await unit.openStore();
    try {
      const before = (await store.messages.partitionOwners()).get(partitionOf(ur.id))!;
      const acks = await Promise.all(
        senders.flatMap((c, i) =>
          Array.from({ length: 10 }, (_, k) =>
            c.sendChat(ur.id, `s${i}-${k}`, { cmid: `one-writer-${i}-${k}` }),
          ),
        ),
      );
      expect(acks.filter((r) => r.errno !== 0)).toEqual([]);
      const after = (await store.messages.partitionOwners()).get(partitionOf(ur.id))!;
      // Routed by sender, the senders would reach both nodes and the partition would change hands.
      expect(after.epoch - before.epoch).toBeLessThanOrEqual(1);
      expectSeqs(await recipient.waitForPushes(80, 15_000), 1, 80);
    } finally {
      await store.close();
    }
  });

  test('fencing between the two message processes: the node that lost a partition has its append refused, and it stores nothing', async () => {
    const [a, b] = [await connect(0), await connect(1)];
    const [ua, ub] = [await register(a), await register(b)];
    // Each node called directly, as a gateway with an older or newer provider list would.
    const channels = [unit.services[1]!, unit.services[2]!].map(
      (node) => new RpcChannel({ providers: [`${node.host}:${node.port}`] }),
    );
    const [one, two] = channels.map((ch) =>
      createStub<MessageServiceRpc>(ch, chatServiceDefinition('message')),
    );
    const submit = (node: typeof one, body: string, cmid: string) =>
      node!.Submit(
        {
          sender: ua.id,
          sender_name: ua.name,
          origin: 'fence-test',
          has_cmid: true,
          cmid,
          kind: 'one',
          target: ub.id,
          body,
          time: '2026-12-03 10:00:00',
        },
        { timeoutMs: 15_000 },
      );
    const store = await unit.openStore();
    try {
      expect(await submit(one, 'via node 1', 'fence-1')).toMatchObject({
        errno: 0,
        deliveries: [{ seq: 1 }],
      });
      // Node 2 takes the partition by writing it.
      expect(await submit(two, 'via node 2', 'fence-2')).toMatchObject({
        errno: 0,
        deliveries: [{ seq: 2 }],
      });
      const owner = (await store.messages.partitionOwners()).get(partitionOf(ub.id))!.owner;
      expect(owner).toBe(`${hostname()}:${unit.services[2]!.pid}`);
      // Node 1 still believes it owns it: refused (errno 9, retry), nothing stored.
      const stale = await submit(one, 'stale node 1', 'fence-3');
      expect(stale).toMatchObject({ errno: 9, mid: 0, deliveries: [] });
      expect((await store.messages.readInbox(ub.id, 0, 10)).map((e) => e.body)).toEqual([
        'via node 1',
        'via node 2',
      ]);
      expect(await store.messages.cursor(ub.id)).toEqual({ lastSeq: 2, ackedSeq: 0 });
      // The sender's resend with the same cmid, routed to the owner, is stored once.
      expect(await submit(two, 'stale node 1', 'fence-3')).toMatchObject({
        errno: 0,
        deliveries: [{ seq: 3 }],
      });
    } finally {
      await store.close();
      await Promise.all(channels.map((ch) => ch.close()));
    }
  });

  // Last in the file: it kills one of the two message nodes.
  test('the node owning a partition SIGKILLed under load: its partitions move to the survivor; every acknowledged message is stored and delivered once, seqs gap-free', async () => {
    const [a, b, c, d] = [
      await connect(0, 'protobuf'),
      await connect(1, 'json'),
      await connect(1),
      await connect(0),
    ];
    const [ua, ub, uc, ud] = [await register(a), await register(b), await register(c), await register(d)];
    for (const [client, user] of [
      [a, ua],
      [b, ub],
      [c, uc],
      [d, ud],
    ] as const)
      await login(client, user);
    const store = await unit.openStore();
    try {
      // The first message takes b's partition: its owner is the node to kill.
      expect((await a.sendChat(ub.id, 'm0', { cmid: 'failover-0' })).errno).toBe(0);
      const owners = await store.messages.partitionOwners();
      const before = owners.get(partitionOf(ub.id))!;
      const victim = unit.services.find((s) => before.owner === `${hostname()}:${s.pid}`);
      expect(victim, `owner ${before.owner} is one of the message nodes`).toBeDefined();
      const survivor = unit.services.find((s) => s !== victim && s !== unit.services[0])!;

      // Two streams under load, 20 in flight each (a→b across gateways, c→d the other way);
      // the owner of b's partition is killed while they run.
      const total = 300;
      const stream = async (from: ChatClient, to: User, tag: string, first: number) => {
        const acks: { errno: number; mid?: number }[] = [];
        for (let start = first; start < total; start += 20) {
          const batch = Array.from({ length: Math.min(20, total - start) }, (_, k) =>
            from.sendChat(to.id, `${tag}${start + k}`, { cmid: `${tag}-${start + k}` }),
          );
          acks.push(...(await Promise.all(batch)));
        }
        return acks;
      };
      let killedAt = 0;
      let early: ChatPush[] = [];
      const killer = (async () => {
        early = await b.waitForPushes(60, 30_000);
        killedAt = performance.now();
        await victim!.kill();
      })();
      const [ab, cd] = await Promise.all([stream(a, ub, 'm', 1), stream(c, ud, 'n', 0), killer]);
      // Retried by the gateway (they carry cmids) on the survivor, which deduplicates: all acknowledged.
      expect(ab.filter((r) => r.errno !== 0)).toEqual([]);
      expect(cd.filter((r) => r.errno !== 0)).toEqual([]);
      expect(new Set(ab.map((r) => r.mid)).size).toBe(total - 1);
      expect(new Set(cd.map((r) => r.mid)).size).toBe(total);
      expect(performance.now() - killedAt).toBeLessThan(60_000);

      // The partition moved: the survivor took it, with a higher epoch.
      const after = (await store.messages.partitionOwners()).get(partitionOf(ub.id))!;
      expect(after.owner).toBe(`${hostname()}:${survivor.pid}`);
      expect(after.epoch).toBeGreaterThan(before.epoch);

      // One more message each: its push lets the inbox stream repair anything a lost push skipped.
      expect((await a.sendChat(ub.id, 'last', { cmid: 'm-last' })).errno).toBe(0);
      expect((await c.sendChat(ud.id, 'last', { cmid: 'n-last' })).errno).toBe(0);
      for (const [client, user, tag, seen] of [
        [b, ub, 'm', early],
        [d, ud, 'n', []],
      ] as const) {
        const pushes = [...seen, ...(await client.waitForPushes(total + 1 - seen.length, 30_000))];
        expectSeqs(pushes, 1, total + 1);
        expect(pushes.map((p) => p.msg)).toEqual([
          ...Array.from({ length: total }, (_, i) => `${tag}${i}`),
          'last',
        ]);
        // The store holds each message once: no duplicate, no gap.
        const inbox = await store.messages.readInbox(user.id, 0, 1000);
        expect(inbox.map((e) => e.seq)).toEqual(Array.from({ length: total + 1 }, (_, i) => i + 1));
        expect(new Set(inbox.map((e) => e.mid)).size).toBe(total + 1);
      }
    } finally {
      await store.close();
    }
  }, 120_000);
});
