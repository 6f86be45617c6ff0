/**
 * Loading .proto services with protobufjs and turning them into the descriptors the channel and
 * provider work with: names, message types, idempotency and the pre-encoded native header part.
 */
import protobuf from 'protobufjs';
import { RpcError } from './errors.js';
import { encodeNamePrefix } from './wire/nativeFrame.js';

/**
 * Field names stay as written in the .proto (`keepCase`), like the C++ generated accessors and
 * the classic consumer's view of the messages.
 */
const PARSE_OPTIONS: protobuf.IParseOptions = { keepCase: true };

/** Parses .proto source text into a resolved Root. */
export function parseProto(source: string): protobuf.Root {
  const root = protobuf.parse(source, new protobuf.Root(), PARSE_OPTIONS).root;
  root.resolveAll();
  return root;
}

/** Loads a .proto file (and its imports) into a resolved Root. */
export async function loadProto(path: string | string[]): Promise<protobuf.Root> {
  const root = await new protobuf.Root().load(path, PARSE_OPTIONS);
  root.resolveAll();
  return root;
}

export interface MethodDescriptor {
  /** Full service name without the leading dot, e.g. "fixbug.UserServiceRpc". */
  readonly serviceName: string;
  /** Short service name, e.g. "UserServiceRpc" (the classic wire and ZooKeeper layout use it). */
  readonly serviceShortName: string;
  readonly name: string;
  /** "fixbug.UserServiceRpc.Login" */
  readonly fullName: string;
  readonly requestType: protobuf.Type;
  readonly responseType: protobuf.Type;
  /** Safe to retry after a failure that may have run it (see README, "Retries"). */
  readonly idempotent: boolean;
  /** @internal RpcMeta fields 3 and 4, encoded once. */
  readonly namePrefix: Uint8Array;
}

export interface ServiceDescriptor {
  readonly fullName: string;
  readonly shortName: string;
  readonly methods: ReadonlyMap<string, MethodDescriptor>;
  readonly service: protobuf.Service;
}

export interface DescribeOptions {
  /**
   * Method names to treat as idempotent in addition to those the .proto marks with
   * `option idempotency_level = IDEMPOTENT;` (or NO_SIDE_EFFECTS). Default none.
   */
  idempotent?: readonly string[];
}

const cache = new WeakMap<protobuf.Service, ServiceDescriptor>();

function markedIdempotent(method: protobuf.Method): boolean {
  const level = method.options?.idempotency_level;
  return level === 'IDEMPOTENT' || level === 'NO_SIDE_EFFECTS';
}

/** The descriptor of a protobufjs Service (cached per service unless options are given). */
export function describeService(service: protobuf.Service, options: DescribeOptions = {}): ServiceDescriptor {
  const cached = options.idempotent === undefined ? cache.get(service) : undefined;
  if (cached !== undefined) return cached;
  service.resolveAll();
  const fullName = service.fullName.replace(/^\./, '');
  const extra = new Set(options.idempotent ?? []);
  const methods = new Map<string, MethodDescriptor>();
  for (const method of service.methodsArray) {
    if (method.requestStream || method.responseStream) {
      throw new RpcError('CONFIG_ERROR', `${fullName}.${method.name}: streaming methods are not supported`);
    }
    const requestType = method.resolvedRequestType;
    const responseType = method.resolvedResponseType;
    if (requestType === null || responseType === null) {
      throw new RpcError('CONFIG_ERROR', `${fullName}.${method.name}: unresolved message types`);
    }
    methods.set(method.name, {
      serviceName: fullName,
      serviceShortName: service.name,
      name: method.name,
      fullName: `${fullName}.${method.name}`,
      requestType,
      responseType,
      idempotent: markedIdempotent(method) || extra.has(method.name),
      namePrefix: encodeNamePrefix(fullName, method.name),
    });
  }
  for (const name of extra) {
    if (!methods.has(name)) throw new RpcError('CONFIG_ERROR', `${fullName} has no method '${name}'`);
  }
  const descriptor: ServiceDescriptor = { fullName, shortName: service.name, methods, service };
  if (options.idempotent === undefined) cache.set(service, descriptor);
  return descriptor;
}

/** Looks a service up by full name ("pkg.Service") in a root, with a clear error. */
export function lookupService(root: protobuf.Root, name: string): protobuf.Service {
  try {
    return root.lookupService(name);
  } catch (cause) {
    throw new RpcError('CONFIG_ERROR', `no service '${name}' in the .proto`, { cause });
  }
}
