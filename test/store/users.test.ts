import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../src/app/model/passwords.js';
import { holderOf } from '../../src/app/model/UserModel.js';
import { createUsers, STORE_KINDS, uniqueName, useTestStore } from './harness.js';

const NASTY = [
  "'; DROP TABLE users; --",
  'Robert"); DROP TABLE users;--',
  'back\\slash\\\\ and \\n not a newline',
  'it\'s "quoted" `ticked`',
  '%_ LIKE wildcards %',
  'Grüße, 你好, привет',
  '😀👍🏽🇫🇷 emoji',
  'line\nbreak\ttab\r',
  'nul\u0000inside',
  '  padded  ',
];

describe.each(STORE_KINDS)('UserModel on %s', (kind) => {
  const t = useTestStore(kind);

  it('creates, finds and verifies a user', async () => {
    const name = uniqueName('alice');
    const id = await t.store.users.create(name, 'correct horse');
    expect(id).toBeGreaterThan(0);
    const user = await t.store.users.findById(id);
    expect(user).toMatchObject({ id, name, state: 'offline' });
    expect(user?.passwordHash).toMatch(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(user?.passwordHash).not.toContain('correct horse');
    expect(await t.store.users.verifyPassword(id, 'correct horse')).toEqual(user);
  });

  it('rejects a wrong password and an unknown id alike', async () => {
    const id = await t.store.users.create(uniqueName('bob'), 'secret');
    expect(await t.store.users.verifyPassword(id, 'Secret')).toBeUndefined();
    expect(await t.store.users.verifyPassword(id, '')).toBeUndefined();
    expect(await t.store.users.verifyPassword(987654, 'secret')).toBeUndefined();
    expect(await t.store.users.findById(987654)).toBeUndefined();
  });

  it('refuses a taken name with CONFLICT and keeps the first user', async () => {
    const name = uniqueName('carol');
    const id = await t.store.users.create(name, 'one');
    await expect(t.store.users.create(name, 'two')).rejects.toMatchObject({
      name: 'StoreError',
      code: 'CONFLICT',
    });
    expect(await t.store.users.verifyPassword(id, 'one')).toBeDefined();
  });

  it('treats names as exact strings: case, trailing spaces and different emoji are distinct', async () => {
    const base = uniqueName('Dave');
    const variants = [base, base.toLowerCase(), `${base} `, `${base}😀`, `${base}😁`];
    const ids = await Promise.all(variants.map((n) => t.store.users.create(n, 'pw')));
    expect(new Set(ids).size).toBe(variants.length);
    for (const [i, id] of ids.entries()) expect((await t.store.users.findById(id))?.name).toBe(variants[i]);
  });

  it('stores SQL metacharacters and unicode verbatim, in names and passwords', async () => {
    for (const nasty of NASTY) {
      const name = `${nasty}${uniqueName('#')}`;
      const id = await t.store.users.create(name, nasty);
      expect((await t.store.users.findById(id))?.name).toBe(name);
      expect(await t.store.users.verifyPassword(id, nasty)).toBeDefined();
      expect(await t.store.users.verifyPassword(id, `${nasty}x`)).toBeUndefined();
    }
    // The users table survived the "DROP TABLE" names.
    expect(await createUsers(t.store, 1)).toHaveLength(1);
  });

  it('tracks presence per server and resets one server without touching others', async () => {
    const [a, b, c, d] = await createUsers(t.store, 4, 'presence');
    const users = t.store.users;
    const srvA = uniqueName('server-a');
    const srvB = uniqueName('server-b');
    await users.setState(a!, 'online', srvA);
    await users.setState(b!, 'online', srvA);
    await users.setState(c!, 'online', srvB);
    expect((await users.findById(a!))?.state).toBe('online');
    expect((await users.findById(d!))?.state).toBe('offline');

    expect(await users.resetServer(srvA)).toBe(2);
    expect((await users.findById(a!))?.state).toBe('offline');
    expect((await users.findById(b!))?.state).toBe('offline');
    expect((await users.findById(c!))?.state).toBe('online');
    expect(await users.resetServer(srvA)).toBe(0);
  });

  it("resets one incarnation (serverId|epoch) of a server, or all of them, and never a neighbour's", async () => {
    const users = t.store.users;
    const id = uniqueName('gw');
    // Neighbours of the prefix range in byte order: the id alone, a longer id, `id|`'s successors.
    const holders = {
      old: holderOf(id, 'aaaaaaaaaaaa'),
      next: holderOf(id, 'bbbbbbbbbbbb'),
      bare: id,
      cluster: holderOf(id, ''),
      longer: holderOf(`${id}0`, 'aaaaaaaaaaaa'),
      brace: `${id}}`,
      other: holderOf(uniqueName('gx'), 'aaaaaaaaaaaa'),
    };
    const names = Object.keys(holders) as (keyof typeof holders)[];
    const ids = await createUsers(t.store, names.length, 'incarnations');
    const online = async (): Promise<string[]> => {
      const rows = await Promise.all(ids.map((u) => users.findById(u)));
      return names.filter((_, i) => rows[i]?.state === 'online');
    };
    await Promise.all(names.map((n, i) => users.setState(ids[i]!, 'online', holders[n])));

    // The incarnation that lost its session: its user only, the next incarnation's stays online.
    expect(await users.resetServer(id, 'aaaaaaaaaaaa')).toBe(1);
    expect(await online()).toEqual(['next', 'bare', 'cluster', 'longer', 'brace', 'other']);
    // Every incarnation (a restart with the same id, a sweep of a dead server).
    expect(await users.resetServer(id)).toBe(3);
    expect(await online()).toEqual(['longer', 'brace', 'other']);
  });

  it('ignores a late logout from a server that no longer holds the session', async () => {
    const [a] = await createUsers(t.store, 1, 'moved');
    const users = t.store.users;
    const srvA = uniqueName('old');
    const srvB = uniqueName('new');
    await users.setState(a!, 'online', srvA);
    await users.setState(a!, 'online', srvB); // logged in again elsewhere
    await users.setState(a!, 'offline', srvA); // the old server's connection closes late
    expect((await users.findById(a!))?.state).toBe('online');
    expect(await users.resetServer(srvA)).toBe(0);
    await users.setState(a!, 'offline', srvB);
    expect((await users.findById(a!))?.state).toBe('offline');
    await users.setState(a!, 'online', srvB);
    await users.setState(a!, 'offline', null); // unconditional
    expect((await users.findById(a!))?.state).toBe('offline');
  });
});

describe('passwords', () => {
  it('salts every hash and verifies only the right password', async () => {
    const [h1, h2] = await Promise.all([hashPassword('pw'), hashPassword('pw')]);
    expect(h1).not.toBe(h2);
    expect(await verifyPassword('pw', h1)).toBe(true);
    expect(await verifyPassword('pw', h2)).toBe(true);
    expect(await verifyPassword('pw ', h1)).toBe(false);
  });

  it('verifies hashes made with other parameters and rejects malformed ones', async () => {
    const h = await hashPassword('pw');
    const [, , , , salt] = h.split('$');
    // A hash with other parameters still verifies with the parameters it carries.
    const { scryptSync } = await import('node:crypto');
    const other = scryptSync('pw', Buffer.from(salt!, 'base64'), 32, { N: 1024, r: 4, p: 1 }).toString(
      'base64',
    );
    expect(await verifyPassword('pw', `scrypt$1024$4$1$${salt}$${other}`)).toBe(true);
    for (const bad of [
      '',
      'plain',
      'md5$x$y',
      `scrypt$1000$8$1$${salt}$${other}`,
      `scrypt$${2 ** 30}$8$1$${salt}$x`,
    ]) {
      expect(await verifyPassword('pw', bad)).toBe(false);
    }
  });
});
