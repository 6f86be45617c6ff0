/**
 * `mprpc`: call any method of a .proto service from the shell, and list what ZooKeeper holds.
 *
 *   mprpc call fixbug.UserServiceRpc.Login '{"name":"emhhbmcgc2Fu"}' --proto user.proto --zookeeper 127.0.0.1:2181
 *   mprpc list --zookeeper 127.0.0.1:2181
 *
 * Requests and responses are JSON with the field names of the .proto, bytes as base64 and 64-bit
 * integers as strings (protobufjs's fromObject / toObject). Exit codes: 0 done, 1 the call or
 * lookup failed (the error code and text go to stderr), 2 bad usage or input.
 */
import { parseArgs } from 'node:util';
import type protobuf from 'protobufjs';
import { formatHostPort, parseHostPort, parseZkHosts } from '../address.js';
import { ClassicRpcChannel } from '../client/ClassicRpcChannel.js';
import type { RpcCaller } from '../client/RpcCaller.js';
import { RpcChannel } from '../client/RpcChannel.js';
import { loadRpcConfig } from '../config.js';
import { isRpcError } from '../errors.js';
import { describeService, loadProto, lookupService, type MethodDescriptor } from '../proto.js';
import { DEFAULT_REGISTRY_ROOT, decodeRecord, providersPath } from '../registry/layout.js';
import { ZkSession } from '../registry/ZkSession.js';

export const MPRPC_USAGE = `usage: mprpc <command> [options]

commands:
  call <pkg.Service.Method> [JSON|-]   call a method; the request is JSON (default {}), '-' reads stdin
  list                                  services and providers registered in ZooKeeper (and any
                                        other registry under the root, e.g. the chat gateways)

where (one of):
  --zookeeper HOSTS       find providers in ZooKeeper: HOST:PORT[,HOST:PORT…] (an ensemble)
  --provider HOST:PORT    call this provider directly (call only; repeat for several)
  --config FILE           classic key=value file (zookeeperip/zookeeperport, rpcserverip/rpcserverport)

options:
  --proto FILE            the .proto that defines the service (call; repeat for several files)
  --classic               use the classic mprpc wire format (one connection per call)
  --timeout MS            deadline of the call, or of reaching ZooKeeper (default 5000)
  --root PATH             registry root of native providers (default ${DEFAULT_REGISTRY_ROOT})
  -h, --help              this text

JSON field names are as written in the .proto; bytes are base64, 64-bit integers strings (as
protobufjs converts them). Exit codes: 0 done, 1 the call or lookup failed, 2 bad usage or input.
`;

export interface CliIo {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

class UsageError extends Error {}

interface Options {
  zookeeper?: string;
  providers: string[];
  protos: string[];
  classic: boolean;
  timeoutMs: number;
  root: string;
}

function parseOptions(
  argv: readonly string[],
): { command: string; rest: string[]; options: Options } | 'help' {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTION_SPEC; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTION_SPEC, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const [command, ...rest] = parsed.positionals;
  if (command === undefined) throw new UsageError('a command is needed: call or list');
  const timeoutMs = v.timeout === undefined ? 5000 : Number(v.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`bad --timeout '${v.timeout}'`);
  let zookeeper = v.zookeeper;
  const providers = [...(v.provider ?? [])];
  if (v.config !== undefined) {
    const config = loadRpcConfig(v.config);
    zookeeper ??= config.zookeeper;
    if (zookeeper === undefined && config.host !== undefined && config.port !== undefined) {
      providers.push(formatHostPort(config.host, config.port));
    }
  }
  for (const address of providers) {
    if (parseHostPort(address) === null) throw new UsageError(`bad address '${address}' (want HOST:PORT)`);
  }
  if (zookeeper !== undefined && parseZkHosts(zookeeper) === null) {
    throw new UsageError(`bad --zookeeper '${zookeeper}' (want HOST:PORT[,HOST:PORT…])`);
  }
  if (zookeeper !== undefined && providers.length > 0) {
    throw new UsageError('give either --zookeeper or --provider, not both');
  }
  return {
    command,
    rest,
    options: {
      zookeeper,
      providers,
      protos: v.proto ?? [],
      classic: v.classic ?? false,
      timeoutMs,
      root: v.root ?? DEFAULT_REGISTRY_ROOT,
    },
  };
}

const OPTION_SPEC = {
  zookeeper: { type: 'string' },
  provider: { type: 'string', multiple: true },
  config: { type: 'string' },
  proto: { type: 'string', multiple: true },
  classic: { type: 'boolean' },
  timeout: { type: 'string' },
  root: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Runs one command; resolves with the exit code. Never throws for bad input. */
export async function runMprpc(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const parsed = parseOptions(argv);
    if (parsed === 'help') {
      io.stdout.write(MPRPC_USAGE);
      return 0;
    }
    const { command, rest, options } = parsed;
    if (command === 'call') return await call(rest, options, io);
    if (command === 'list') {
      if (rest.length > 0) throw new UsageError(`list takes no arguments, got '${rest.join(' ')}'`);
      return await list(options, io);
    }
    throw new UsageError(`unknown command '${command}' (call or list)`);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`mprpc: ${error.message}\n(mprpc --help for usage)\n`);
      return 2;
    }
    if (isRpcError(error) && error.code === 'CONFIG_ERROR') {
      io.stderr.write(`mprpc: ${error.message}\n`);
      return 2;
    }
    io.stderr.write(`mprpc: ${isRpcError(error) ? `${error.code}: ` : ''}${(error as Error).message}\n`);
    return 1;
  }
}

async function call(args: string[], options: Options, io: CliIo): Promise<number> {
  const [methodName, json, ...extra] = args;
  if (methodName === undefined) throw new UsageError('call needs a method: pkg.Service.Method');
  if (extra.length > 0) throw new UsageError(`unexpected '${extra.join(' ')}' after the request`);
  if (options.protos.length === 0) throw new UsageError('call needs --proto FILE');
  if (options.zookeeper === undefined && options.providers.length === 0) {
    throw new UsageError('call needs --zookeeper, --provider or --config');
  }
  if (options.classic && options.providers.length > 1) {
    throw new UsageError('--classic calls one --provider (or looks the method up in ZooKeeper)');
  }
  const method = await findMethod(options.protos, methodName);
  const text = json === '-' ? await readAll(io.stdin) : (json ?? '{}');
  const request = toRequest(method.requestType, text);

  const channel = openChannel(options);
  try {
    const response = await channel.call<protobuf.Message>(method, request, { timeoutMs: options.timeoutMs });
    const object = method.responseType.toObject(response, {
      bytes: String,
      longs: String,
      enums: String,
      defaults: true,
    });
    io.stdout.write(`${JSON.stringify(object, null, 2)}\n`);
    return 0;
  } finally {
    await channel.close();
  }
}

function openChannel(options: Options): RpcCaller & { close(): Promise<void> } {
  if (options.classic) {
    if (options.zookeeper !== undefined) return new ClassicRpcChannel({ zookeeper: options.zookeeper });
    const address = parseHostPort(options.providers[0]!)!;
    return new ClassicRpcChannel({ host: address.host, port: address.port });
  }
  return options.zookeeper !== undefined
    ? new RpcChannel({ zookeeper: options.zookeeper, registryRoot: options.root })
    : new RpcChannel({ providers: options.providers });
}

async function findMethod(protos: string[], fullName: string): Promise<MethodDescriptor> {
  const dot = fullName.lastIndexOf('.');
  if (dot <= 0 || dot === fullName.length - 1) {
    throw new UsageError(`'${fullName}' is not pkg.Service.Method`);
  }
  let root: protobuf.Root;
  try {
    root = await loadProto(protos);
  } catch (error) {
    throw new UsageError(`cannot load ${protos.join(', ')}: ${(error as Error).message}`);
  }
  const methods = describeService(lookupService(root, fullName.slice(0, dot))).methods;
  const method = methods.get(fullName.slice(dot + 1));
  if (method === undefined) {
    const names = [...methods.keys()].join(', ');
    throw new UsageError(
      `${fullName.slice(0, dot)} has no method '${fullName.slice(dot + 1)}' (it has: ${names})`,
    );
  }
  return method;
}

function toRequest(type: protobuf.Type, text: string): protobuf.Message {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`the request is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`the request must be a JSON object for ${type.name}`);
  }
  const unknown = unknownFields(type, value, '');
  if (unknown !== null) throw new UsageError(`${type.name} has no field '${unknown}'`);
  let message: protobuf.Message;
  try {
    message = type.fromObject(value as Record<string, unknown>);
  } catch (error) {
    throw new UsageError(`bad ${type.name}: ${(error as Error).message}`);
  }
  const problem = type.verify(message);
  if (problem !== null) throw new UsageError(`bad ${type.name}: ${problem}`);
  return message;
}

/** The path of the first key that names no field (protobufjs's fromObject would drop it silently). */
function unknownFields(type: protobuf.Type, value: object, prefix: string): string | null {
  for (const [key, item] of Object.entries(value)) {
    const field = type.fields[key]; // names as written in the .proto (keepCase)
    if (field === undefined) return `${prefix}${key}`;
    field.resolve();
    const nested = field.resolvedType;
    if (
      nested === null ||
      !('fieldsArray' in nested) ||
      field.map ||
      item === null ||
      typeof item !== 'object'
    ) {
      continue;
    }
    const items = Array.isArray(item) ? item : [item];
    for (const element of items) {
      if (typeof element !== 'object' || element === null) continue;
      const inner = unknownFields(nested as protobuf.Type, element, `${prefix}${key}.`);
      if (inner !== null) return inner;
    }
  }
  return null;
}

async function list(options: Options, io: CliIo): Promise<number> {
  if (options.zookeeper === undefined) throw new UsageError('list needs --zookeeper or --config');
  const zk = new ZkSession({
    connect: options.zookeeper,
    sessionTimeoutMs: Math.max(4000, options.timeoutMs),
  });
  zk.start();
  try {
    await zk.waitConnected(options.timeoutMs);
    const services = (await zk.getChildren(`${options.root}/services`)) ?? [];
    for (const service of services.sort()) {
      const path = providersPath(options.root, service);
      const nodes = (await zk.getChildren(path)) ?? [];
      io.stdout.write(`${service}  (${nodes.length} provider${nodes.length === 1 ? '' : 's'})\n`);
      for (const node of nodes.sort()) {
        const data = await zk.getData(`${path}/${node}`);
        const record = data === null ? null : decodeRecord(data.data);
        io.stdout.write(
          record === null
            ? `  ${node}  (no readable record)\n`
            : `  ${node}  load ${record.load}  ${record.callsPerSec.toFixed(1)} calls/s  ` +
                `methods ${record.methods.join(',') || '-'}  protocols ${record.protocols.join(',') || '-'}  pid ${record.pid}\n`,
        );
      }
    }
    await listOtherRegistries(zk, options.root, io);
    const classicServices = options.classic ? await listClassic(zk, options.root, io) : 0;
    if (services.length + classicServices === 0) io.stdout.write('no providers registered\n');
    return 0;
  } finally {
    await zk.close();
  }
}

/**
 * Other registries kept under the root by their users (e.g. the chat gateways, with their
 * connection counts): each node's name and data as stored.
 */
async function listOtherRegistries(zk: ZkSession, root: string, io: CliIo): Promise<void> {
  for (const name of ((await zk.getChildren(root)) ?? []).sort()) {
    if (name === 'services') continue;
    const dir = `${root}/${name}`;
    const nodes = (await zk.getChildren(dir)) ?? [];
    io.stdout.write(`${name}  (${nodes.length} node${nodes.length === 1 ? '' : 's'})\n`);
    for (const node of nodes.sort()) {
      const data = await zk.getData(`${dir}/${node}`);
      const text = data === null ? '(gone)' : data.data.toString('utf8').slice(0, 300);
      io.stdout.write(`  ${node}  ${text}\n`);
    }
  }
}

/** The classic layout: /<Service>/<Method> → "ip:port". Returns how many services it showed. */
async function listClassic(zk: ZkSession, nativeRoot: string, io: CliIo): Promise<number> {
  let shown = 0;
  const skip = new Set(['zookeeper', nativeRoot.replace(/^\//, '').split('/')[0]]);
  for (const service of ((await zk.getChildren('/')) ?? []).sort()) {
    if (skip.has(service)) continue;
    const methods = (await zk.getChildren(`/${service}`)) ?? [];
    if (methods.length === 0) continue;
    io.stdout.write(`classic /${service}\n`);
    shown++;
    for (const method of methods.sort()) {
      const data = await zk.getData(`/${service}/${method}`);
      io.stdout.write(`  ${method}  ${data === null ? '(gone)' : data.data.toString('utf8')}\n`);
    }
  }
  return shown;
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: globalThis.Buffer[] = [];
    stream.on('data', (chunk: globalThis.Buffer | string) =>
      chunks.push(typeof chunk === 'string' ? globalThis.Buffer.from(chunk) : chunk),
    );
    stream.on('end', () => resolve(globalThis.Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}
