import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createUsers, STORE_KINDS, useTestStore } from './harness.js';

/** Any Unicode code point but lone surrogates (which UTF-8 JSON cannot carry anyway). */
const text = (maxLength: number) => fc.string({ unit: 'binary', maxLength });

let seq = 0;

describe.each(STORE_KINDS)('arbitrary strings round-trip unchanged on %s', (kind) => {
  const t = useTestStore(kind);

  it('through users.create / findById / verifyPassword', async () => {
    await fc.assert(
      fc.asyncProperty(text(40), text(50), async (raw, password) => {
        const name = `${++seq}~${raw}`; // unique, and at most 50 code points
        const id = await t.store.users.create(name, password);
        const user = await t.store.users.findById(id);
        expect(user?.name).toBe(name);
        expect(await t.store.users.verifyPassword(id, password)).toEqual(user);
      }),
      { numRuns: 40 },
    );
  });

  it('through groups.create / listForUser', async () => {
    const [owner] = await createUsers(t.store, 1, 'prop-owner');
    const made: { id: number; groupname: string; groupdesc: string }[] = [];
    await fc.assert(
      fc.asyncProperty(text(40), text(200), async (raw, groupdesc) => {
        const groupname = `${++seq}~${raw}`;
        made.push({ id: await t.store.groups.create(owner!, groupname, groupdesc), groupname, groupdesc });
      }),
      { numRuns: 40 },
    );
    const listed = await t.store.groups.listForUser(owner!);
    expect(listed.map(({ id, groupname, groupdesc }) => ({ id, groupname, groupdesc }))).toEqual(made);
  });

  it('through messages.append / readInbox, and the cmid still de-duplicates', async () => {
    const [a, b] = await createUsers(t.store, 2, 'prop-msg');
    await fc.assert(
      fc.asyncProperty(text(1024), text(56), text(19), async (body, rawCmid, time) => {
        const cmid = `${++seq}~${rawCmid}`;
        const msg = { sender: a!, cmid, kind: 'one' as const, target: b!, body, time, recipients: [b!] };
        const [r] = await t.store.messages.append([msg]);
        const [entry] = await t.store.messages.readInbox(b!, r!.deliveries[0]!.seq - 1, 1);
        expect(entry).toMatchObject({ mid: r!.mid, body, time, sender: a, target: b });
        const [again] = await t.store.messages.append([{ ...msg, time: 'retried later' }]);
        expect(again).toEqual({ mid: r!.mid, duplicate: true, deliveries: [] });
      }),
      { numRuns: 40 },
    );
  });
});
