/**
 * The user service's RPC handlers over a real SQLite store, and their wire type: ResetServer
 * carries the incarnation to clean up after, so a gateway's next incarnation keeps its users.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userProvider } from '../../src/app/distributed/providers.js';
import { chatServiceDefinition } from '../../src/app/distributed/serviceProto.js';
import type { ResetServerRequest } from '../../src/app/distributed/wireTypes.js';
import { holderOf } from '../../src/app/model/UserModel.js';
import type { CallContext } from '../../src/rpc/index.js';
import { openTempStore, type TempStore } from '../service/helpers.js';

let temp: TempStore;
beforeAll(async () => {
  temp = await openTempStore();
});
afterAll(async () => {
  await temp.dispose();
});

describe('UserService.ResetServer', () => {
  it('resets one incarnation when one_epoch is set, every incarnation when not', async () => {
    const users = temp.store.users;
    const ids = await Promise.all(['r1', 'r2', 'r3'].map((n) => users.create(n, 'pw')));
    await users.setState(ids[0]!, 'online', holderOf('gw', 'e1'));
    await users.setState(ids[1]!, 'online', holderOf('gw', 'e2'));
    await users.setState(ids[2]!, 'online', holderOf('gw', 'e3'));
    const provider = userProvider(users);
    const context: CallContext = {
      service: 'chat.svc.UserService',
      method: 'ResetServer',
      protocol: 'native',
      peer: '127.0.0.1:1',
      deadline: Number.POSITIVE_INFINITY,
      remainingMs: () => Number.POSITIVE_INFINITY,
    };
    const reset = async (request: ResetServerRequest) => provider.ResetServer(request, context);

    expect(await reset({ server_id: 'gw', epoch: 'e1', one_epoch: true })).toMatchObject({
      errno: 0,
      count: 1,
    });
    // An empty epoch is an incarnation too (chat-server's cluster records `id|`).
    expect(await reset({ server_id: 'gw', epoch: '', one_epoch: true })).toMatchObject({ count: 0 });
    expect((await users.findById(ids[1]!))?.state).toBe('online');
    expect(await reset({ server_id: 'gw', epoch: '', one_epoch: false })).toMatchObject({ count: 2 });
    expect((await users.findById(ids[2]!))?.state).toBe('offline');
  });

  it('its request keeps epoch and one_epoch through protobuf', () => {
    const type = chatServiceDefinition('user').root.lookupType('chat.svc.ResetServerRequest');
    const request = { server_id: 'gw', epoch: 'e9', one_epoch: true };
    expect(type.toObject(type.decode(type.encode(request).finish()))).toEqual(request);
  });
});
