/**
 * Classic mprpc compatibility both ways, proven against an independent classic implementation
 * (classicPeers.ts), and the classic ZooKeeper layout for classic consumers.
 */
import * as zookeeper from 'node-zookeeper-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventLoop } from '../../src/net/EventLoop.js';
import { ClassicRpcChannel } from '../../src/rpc/client/ClassicRpcChannel.js';
import { RpcChannel } from '../../src/rpc/client/RpcChannel.js';
import { describeService, type MethodDescriptor } from '../../src/rpc/proto.js';
import { RpcController } from '../../src/rpc/RpcController.js';
import { RpcProvider } from '../../src/rpc/server/RpcProvider.js';
import { createStub } from '../../src/rpc/stub.js';
import { startZooKeeper, type ZooKeeperHandle } from '../helpers/zookeeper.js';
import { classicCall, startClassicProvider } from './classicPeers.js';
import {
  type EchoShape,
  echoImpl,
  echoService,
  HOST,
  rejection,
  root,
  sleep,
  type UserShape,
  userImpl,
  userService,
} from './helpers.js';

const LoginRequest = root.lookupType('fixbug.LoginRequest');
const LoginResponse = root.lookupType('fixbug.LoginResponse');
const loginArgs = (name: string, pwd: string): Uint8Array =>
  LoginRequest.encode({ name: Buffer.from(name), pwd: Buffer.from(pwd) }).finish();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function startOurProvider(options: ConstructorParameters<typeof RpcProvider>[0] = {}) {
  const provider = new RpcProvider({ host: HOST, loop: new EventLoop(), ...options });
  provider.notifyService(userService, userImpl);
  provider.notifyService<EchoShape>(echoService, {
    ...echoImpl('ours'),
    Append: (request) => {
      if (request.fail) throw new Error(request.fail);
      return { payload: new Uint8Array(0), served_by: '', seq: 0 }; // all defaults: zero bytes
    },
  });
  const address = await provider.run();
  cleanups.push(() => provider.stop({ graceMs: 200 }));
  return { provider, port: address.port };
}

describe('a classic consumer calling our provider', () => {
  it('gets the bare response and EOF, on the same port as native callers', async () => {
    const { provider, port } = await startOurProvider();
    const outcome = await classicCall(
      HOST,
      port,
      'UserServiceRpc',
      'Login',
      loginArgs('zhang san', '123456'),
    );
    expect(outcome.kind).toBe('response');
    const reply = LoginResponse.decode((outcome as { bytes: Buffer }).bytes) as unknown as {
      success: boolean;
      result: { errcode: number };
    };
    expect(reply.success).toBe(true);
    expect(reply.result.errcode).toBe(0);

    // A native caller on the very same port, at the same time.
    const channel = new RpcChannel({ host: HOST, port, loop: new EventLoop() });
    cleanups.push(() => channel.close());
    const users = createStub<UserShape>(channel, userService);
    const [native, classic] = await Promise.all([
      users.Login({ name: Buffer.from('zhang san'), pwd: Buffer.from('x') }),
      classicCall(HOST, port, 'UserServiceRpc', 'Login', loginArgs('zhang san', 'x')),
    ]);
    expect(native.success).toBe(false);
    expect(
      (LoginResponse.decode((classic as { bytes: Buffer }).bytes) as unknown as { success: boolean }).success,
    ).toBe(false);
    expect(provider.stats.completed).toBe(3);
  });

  it('serves many one-call connections at once', async () => {
    const { port } = await startOurProvider();
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        classicCall(
          HOST,
          port,
          'UserServiceRpc',
          'Login',
          loginArgs('zhang san', i % 2 === 0 ? '123456' : 'no'),
        ),
      ),
    );
    outcomes.forEach((outcome, i) => {
      expect(outcome.kind).toBe('response');
      const reply = LoginResponse.decode((outcome as { bytes: Buffer }).bytes) as unknown as {
        success: boolean;
      };
      expect(reply.success).toBe(i % 2 === 0);
    });
  });

  it('is never left hanging: unknown service, unknown method, bad args and handler errors reset the connection', async () => {
    const { port } = await startOurProvider();
    const cases: [string, string, Uint8Array][] = [
      ['NoSuchService', 'Login', loginArgs('a', 'b')],
      ['UserServiceRpc', 'NoSuchMethod', loginArgs('a', 'b')],
      ['UserServiceRpc', 'Login', Uint8Array.from([0x0a, 0x64])], // name claims 100 bytes, has none
      ['EchoService', 'Append', root.lookupType('fixbug.EchoRequest').encode({ fail: 'boom' }).finish()],
    ];
    for (const [service, method, args] of cases) {
      const started = performance.now();
      const outcome = await classicCall(HOST, port, service, method, args);
      // recv() fails (ECONNRESET): the C++ controller reports failure instead of parsing nothing.
      expect(outcome, `${service}.${method}`).toEqual({ kind: 'error', code: 'ECONNRESET' });
      expect(performance.now() - started).toBeLessThan(1000);
    }
  });

  it('an all-default response is zero bytes and a clean EOF (a legitimate classic reply)', async () => {
    const { port } = await startOurProvider();
    const outcome = await classicCall(HOST, port, 'EchoService', 'Append', new Uint8Array(0));
    expect(outcome).toEqual({ kind: 'response', bytes: Buffer.alloc(0) });
  });

  it('is refused when the provider serves native only', async () => {
    const { port } = await startOurProvider({ serveClassic: false });
    expect(await classicCall(HOST, port, 'UserServiceRpc', 'Login', loginArgs('a', 'b'))).toEqual({
      kind: 'error',
      code: 'ECONNRESET',
    });
  });
});

describe('our ClassicRpcChannel calling a classic provider', () => {
  it('calls through a typed stub, one connection per call', async () => {
    const classic = await startClassicProvider({
      'UserServiceRpc/Login': (args) => {
        const request = LoginRequest.decode(args) as unknown as { name: Uint8Array };
        const ok = Buffer.from(request.name).toString() === 'zhang san';
        return Buffer.from(LoginResponse.encode({ success: ok, result: { errcode: ok ? 0 : 7 } }).finish());
      },
    });
    cleanups.push(classic.close);
    const channel = new ClassicRpcChannel({ host: HOST, port: classic.port, loop: new EventLoop() });
    cleanups.push(() => channel.close());
    const users = createStub<UserShape>(channel, userService);
    const replies = await Promise.all([
      users.Login({ name: Buffer.from('zhang san'), pwd: Buffer.from('1') }),
      users.Login({ name: Buffer.from('li si'), pwd: Buffer.from('2') }),
    ]);
    expect(replies[0]!.success).toBe(true);
    expect(replies[1]!.result?.errcode).toBe(7);
    expect(classic.calls).toEqual(['UserServiceRpc/Login', 'UserServiceRpc/Login']);
  });

  it('turns a reset into HANDLER_ERROR and a silent provider into DEADLINE_EXCEEDED', async () => {
    const classic = await startClassicProvider({ 'UserServiceRpc/Login': () => 'reset' });
    cleanups.push(classic.close);
    const channel = new ClassicRpcChannel({ host: HOST, port: classic.port, loop: new EventLoop() });
    cleanups.push(() => channel.close());
    const users = createStub<UserShape>(channel, userService);
    expect((await rejection(users.Login({}))).code).toBe('HANDLER_ERROR');
    // The classic C++ provider neither answers nor closes for an unknown service.
    const echo = createStub<EchoShape>(channel, echoService);
    const controller = new RpcController({ timeoutMs: 100 });
    const started = performance.now();
    expect((await rejection(echo.Echo({}, controller))).code).toBe('DEADLINE_EXCEEDED');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(controller.failed()).toBe(true);
    expect(controller.errorText()).toMatch(/deadline/);
  });

  it('reports UNAVAILABLE when nothing listens', async () => {
    const classic = await startClassicProvider({});
    await classic.close();
    const channel = new ClassicRpcChannel({ host: HOST, port: classic.port, loop: new EventLoop() });
    cleanups.push(() => channel.close());
    const error = await rejection(createStub<UserShape>(channel, userService).Login({}));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.mayHaveExecuted).toBe(false);
  });

  it('also talks classic to our own provider', async () => {
    const { port } = await startOurProvider();
    const channel = new ClassicRpcChannel({ host: HOST, port, loop: new EventLoop() });
    cleanups.push(() => channel.close());
    const users = createStub<UserShape>(channel, userService);
    expect((await users.Login({ name: Buffer.from('zhang san'), pwd: Buffer.from('123456') })).success).toBe(
      true,
    );
    const echo = createStub<EchoShape>(channel, echoService);
    expect((await rejection(echo.Append({ fail: 'nope' }))).code).toBe('HANDLER_ERROR');
  });
});

describe('classic ZooKeeper layout', () => {
  let zk: ZooKeeperHandle;
  beforeAll(async () => {
    zk = await startZooKeeper();
  });
  afterAll(async () => {
    await zk?.dispose();
  });

  function rawZk(): Promise<zookeeper.Client> {
    const client = zookeeper.createClient(zk.connectString, { sessionTimeout: 4000 });
    cleanups.push(async () => client.close());
    return new Promise((resolve) => {
      client.once('connected', () => resolve(client));
      client.connect();
    });
  }

  function getData(client: zookeeper.Client, path: string): Promise<string | null> {
    return new Promise((resolve, reject) =>
      client.getData(path, (error, data) => {
        if (error && (error as zookeeper.Exception).getCode?.() === zookeeper.Exception.NO_NODE)
          resolve(null);
        else if (error) reject(error);
        else resolve(data.toString());
      }),
    );
  }

  it('registers /Service persistent and /Service/Method ephemeral "ip:port", as the classic consumer looks up', async () => {
    const { provider, port } = await startOurProvider({
      zookeeper: zk.connectString,
      zkSessionTimeoutMs: 4000,
    });
    const client = await rawZk();
    // The classic consumer: look the method up, then call it classic-style.
    const address = await getData(client, '/UserServiceRpc/Login');
    expect(address).toBe(`127.0.0.1:${port}`);
    const [host, portText] = address!.split(':');
    const outcome = await classicCall(
      host!,
      Number(portText),
      'UserServiceRpc',
      'Login',
      loginArgs('zhang san', '123456'),
    );
    expect(outcome.kind).toBe('response');
    const stat = await new Promise<zookeeper.Stat>((resolve, reject) =>
      client.exists('/UserServiceRpc', (error, s) => (error ? reject(error) : resolve(s))),
    );
    expect(stat.ephemeralOwner.equals(Buffer.alloc(8))).toBe(true); // persistent
    const methodStat = await new Promise<zookeeper.Stat>((resolve, reject) =>
      client.exists('/EchoService/Append', (error, s) => (error ? reject(error) : resolve(s))),
    );
    expect(methodStat.ephemeralOwner.equals(Buffer.alloc(8))).toBe(false); // ephemeral

    // ClassicRpcChannel looks up the same nodes (once, then from its cache).
    const channel = new ClassicRpcChannel({ zookeeper: zk.connectString, loop: new EventLoop() });
    cleanups.push(() => channel.close());
    const users = createStub<UserShape>(channel, userService);
    expect((await users.Login({ name: Buffer.from('zhang san'), pwd: Buffer.from('123456') })).success).toBe(
      true,
    );
    const unknownService = await rejection(
      channel.call({ ...describeLogin(), serviceShortName: 'NoSuchService' }, {}),
    );
    expect(unknownService.code).toBe('UNKNOWN_SERVICE');
    const unknownMethod = await rejection(channel.call({ ...describeLogin(), name: 'Logout' }, {}));
    expect(unknownMethod.code).toBe('UNKNOWN_METHOD');

    // Leaving removes the ephemeral method nodes.
    await provider.stop({ graceMs: 100 });
    expect(await getData(client, '/UserServiceRpc/Login')).toBeNull();
  });

  it('several providers: one holds each classic node, another takes over when it leaves', async () => {
    const first = await startOurProvider({ zookeeper: zk.connectString, zkSessionTimeoutMs: 4000 });
    const second = await startOurProvider({ zookeeper: zk.connectString, zkSessionTimeoutMs: 4000 });
    const client = await rawZk();
    expect(await getData(client, '/EchoService/Echo')).toBe(`127.0.0.1:${first.port}`);
    await first.provider.stop({ graceMs: 100 });
    let holder: string | null = null;
    for (let i = 0; i < 100 && holder !== `127.0.0.1:${second.port}`; i++) {
      await sleep(20);
      holder = await getData(client, '/EchoService/Echo');
    }
    expect(holder).toBe(`127.0.0.1:${second.port}`);
  });
});

function describeLogin(): MethodDescriptor {
  return describeService(userService).methods.get('Login')!;
}
