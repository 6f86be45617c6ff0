/**
 * The native caller: persistent multiplexed connections to providers found in ZooKeeper (or
 * given statically), least-loaded balancing, deadlines, and failover with retries of
 * idempotent methods (README, "Retries").
 *
 *   const channel = new RpcChannel({ zookeeper: '127.0.0.1:2181' });
 *   const users = createStub<UserService>(channel, root.lookupService('fixbug.UserServiceRpc'));
 *   const reply = await users.Login({ name: 'zhang san', pwd: '123456' }, { timeoutMs: 500 });
 */
import { EventLoop } from '../../net/EventLoop.js';
import { formatHostPort, parseHostPort } from '../address.js';
import { RpcError } from '../errors.js';
import type { MethodDescriptor } from '../proto.js';
import { RpcController } from '../RpcController.js';
import { DEFAULT_REGISTRY_ROOT } from '../registry/layout.js';
import { ProviderDirectory, type ProviderInfo } from '../registry/ProviderDirectory.js';
import { ZkSession } from '../registry/ZkSession.js';
import type { CallOptions } from '../types.js';
import { DeadlineQueue } from './DeadlineQueue.js';
import { type BackoffOptions, Endpoint, pickByAffinity, pickEndpoint } from './Endpoint.js';
import { type ConnectionOwner, NativeConnection, type NativeConnectionOptions } from './NativeConnection.js';
import { CallState, PendingCall } from './PendingCall.js';
import { checkRequest, type RpcCaller } from './RpcCaller.js';
import { turnNow } from './turnClock.js';

export interface RpcChannelOptions {
  /** ZooKeeper "host:port[,…]": discover providers there. Takes precedence over host/port. */
  zookeeper?: string;
  /** A single provider, when not using ZooKeeper. */
  host?: string;
  port?: number;
  /** Several static providers ("host:port"), when not using ZooKeeper. */
  providers?: readonly string[];
  /** Root of the native registry layout. Default '/mprpc'. */
  registryRoot?: string;
  /** ZooKeeper session timeout. Default 30 000 ms. */
  zkSessionTimeoutMs?: number;
  /** Deadline of calls that set none. Default 5000 ms. */
  defaultTimeoutMs?: number;
  /** Attempts per call, the first included (retries only as README "Retries" says). Default 3. */
  maxAttempts?: number;
  /** Fully qualified method names ("pkg.Service.Method") to treat as idempotent. Default none. */
  idempotent?: readonly string[];
  /** Calls in flight per connection; more wait in order. Default 4096. */
  maxInFlightPerConnection?: number;
  /** Unsettled calls per channel; beyond, calls fail with RESOURCE_EXHAUSTED. Default 100 000. */
  maxPendingCalls?: number;
  /** Socket output per connection above which calls wait. Default 8 MiB. */
  maxPendingOutputBytes?: number;
  /** Largest response frame accepted. Default 16 MiB. */
  maxFrameBytes?: number;
  /** Default 3000 ms. */
  connectTimeoutMs?: number;
  /** Provider down-time after a failure (doubles per failure). Default 250 ms up to 5000 ms. */
  backoff?: Partial<BackoffOptions>;
  /** Check requests against the request type before sending. Default true. */
  verifyRequests?: boolean;
  /**
   * How long a provider that vanished from the registry, but whose connection is still up, may
   * serve calls no listed provider can take (a provider re-registering after session expiry).
   * Default 30 000 ms; 0 disables.
   */
  unlistedGraceMs?: number;
  loop?: EventLoop;
}

interface Route {
  readonly service: string;
  endpoints: Endpoint[];
  /**
   * Providers that left the registry while we held a live connection to them, used only when no
   * listed provider can take a call, until `unlistedGraceMs` passes or the connection closes: a
   * provider whose ZooKeeper session expired is still serving while it registers again.
   */
  unlisted: { ep: Endpoint; until: number }[];
  /** The provider list has been read at least once. */
  known: boolean;
  /** Calls waiting for that first list. */
  waiting: PendingCall[];
  next: number;
}

export class RpcChannel implements RpcCaller, ConnectionOwner {
  private readonly loop: EventLoop;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly routes = new Map<string, Route>();
  private readonly staticEndpoints: Endpoint[] | null;
  private readonly zk: ZkSession | null = null;
  private readonly directory: ProviderDirectory | null = null;
  private readonly deadlines: DeadlineQueue<PendingCall>;
  private readonly connectionOptions: NativeConnectionOptions;
  private readonly backoff: BackoffOptions;
  private readonly idempotentNames: ReadonlySet<string>;
  private readonly defaultTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly maxPendingCalls: number;
  private readonly verifyRequests: boolean;
  private readonly unlistedGraceMs: number;
  private pending = 0;
  private closed = false;
  private readonly lostListeners: ((providerKey: string) => void)[] = [];
  /** Providers reported lost and not seen back since (connected or listed again). */
  private readonly lostReported = new Set<string>();

  constructor(options: RpcChannelOptions) {
    this.loop = options.loop ?? EventLoop.default();
    this.deadlines = new DeadlineQueue(this.loop, this.expire);
    this.connectionOptions = {
      loop: this.loop,
      maxInFlight: options.maxInFlightPerConnection ?? 4096,
      maxPendingOutputBytes: options.maxPendingOutputBytes ?? 8 * 1024 * 1024,
      maxFrameBytes: options.maxFrameBytes ?? 16 * 1024 * 1024,
      connectTimeoutMs: options.connectTimeoutMs ?? 3000,
    };
    this.backoff = { initialMs: options.backoff?.initialMs ?? 250, maxMs: options.backoff?.maxMs ?? 5000 };
    this.idempotentNames = new Set(options.idempotent ?? []);
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 5000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.maxPendingCalls = options.maxPendingCalls ?? 100_000;
    this.verifyRequests = options.verifyRequests ?? true;
    this.unlistedGraceMs = options.unlistedGraceMs ?? 30_000;

    if (options.zookeeper !== undefined) {
      this.staticEndpoints = null;
      this.zk = new ZkSession({ connect: options.zookeeper, sessionTimeoutMs: options.zkSessionTimeoutMs });
      this.directory = new ProviderDirectory(this.zk, options.registryRoot ?? DEFAULT_REGISTRY_ROOT);
      this.directory.onChange(this.onProviders);
    } else {
      const addresses = [...(options.providers ?? [])];
      if (options.host !== undefined && options.port !== undefined) {
        addresses.push(formatHostPort(options.host, options.port));
      }
      if (addresses.length === 0) {
        throw new RpcError('CONFIG_ERROR', 'RpcChannel needs zookeeper, host and port, or providers');
      }
      this.staticEndpoints = addresses.map((text) => {
        const address = parseHostPort(text);
        if (address === null) throw new RpcError('CONFIG_ERROR', `bad provider address '${text}'`);
        return this.endpoint(formatHostPort(address.host, address.port), address.host, address.port);
      });
    }
  }

  /** Unsettled calls. */
  get pendingCalls(): number {
    return this.pending;
  }

  /**
   * Calls `method` with `request` (a plain object or message of the request type). Resolves with
   * the decoded response; rejects with an RpcError. With an RpcController as options, the
   * controller records the failure too.
   */
  call<Res extends object = Record<string, unknown>>(
    method: MethodDescriptor,
    request: object,
    options?: CallOptions | RpcController,
  ): Promise<Res> {
    const controller = options instanceof RpcController ? options : null;
    controller?.reset();
    if (this.closed) {
      return failEarly(
        controller,
        new RpcError('CANCELLED', 'channel is closed', { mayHaveExecuted: false }),
      );
    }
    if (this.pending >= this.maxPendingCalls) {
      return failEarly(
        controller,
        new RpcError('RESOURCE_EXHAUSTED', `${this.pending} calls pending (maxPendingCalls)`, {
          mayHaveExecuted: false,
        }),
      );
    }
    const problem = checkRequest(method, request, this.verifyRequests);
    if (problem !== null) return failEarly(controller, problem);
    const now = turnNow();
    const deadline = deadlineOf(options, now, this.defaultTimeoutMs);
    if (deadline <= now) {
      return failEarly(
        controller,
        new RpcError('DEADLINE_EXCEEDED', `${method.fullName}: deadline already passed`, {
          mayHaveExecuted: false,
        }),
      );
    }
    const idempotent =
      options?.idempotent ?? (method.idempotent || this.idempotentNames.has(method.fullName));
    const call = new PendingCall(method, request, deadline, idempotent, controller);
    if (controller === null && options !== undefined && !(options instanceof RpcController)) {
      call.affinity = options.affinity ?? null;
    }
    const promise = new Promise<Res>(capture);
    call.resolve = capturedResolve as (value: object) => void;
    call.reject = capturedReject;
    this.pending++;
    if (deadline !== Number.POSITIVE_INFINITY) this.deadlines.add(call, Math.ceil(deadline - now));
    this.dispatch(call, now);
    return promise;
  }

  /** Resolves once `service` (full name) has at least `count` known providers. */
  async waitForProviders(service: string, count = 1, timeoutMs = 10_000): Promise<void> {
    const route = this.route(service);
    const until = Date.now() + timeoutMs;
    while (!route.known || route.endpoints.length < count) {
      if (Date.now() > until) {
        throw new RpcError(
          'UNAVAILABLE',
          `${service}: ${route.endpoints.length} of ${count} providers after ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Providers known for `service` and our calls outstanding on each (for tools and tests). */
  providers(service: string): { key: string; outstanding: number; reportedLoad: number }[] {
    return (this.routes.get(service)?.endpoints ?? []).map((ep) => ({
      key: ep.key,
      outstanding: ep.outstanding,
      reportedLoad: ep.reportedLoad,
    }));
  }

  /**
   * The provider ("host:port") a call to `service` with `affinity` would be sent to now (the
   * usable listed one with the highest rendezvous weight), or null when none is known. Lets a
   * provider that also calls its own service see whether a keyed call would come back to it.
   */
  affinityProvider(service: string, affinity: string): string | null {
    const route = this.route(service); // watched from now on
    if (!route.known) return null;
    return pickByAffinity(route.endpoints, performance.now(), affinity, null)?.key ?? null;
  }

  /**
   * Calls `listener` with a provider's "host:port" when our connection to it is lost or drained,
   * or when it leaves the registry: work it committed may not have been announced by it (its
   * owner may want to re-read what it depends on). Once per loss: a provider that leaves the
   * registry and then drains (a clean stop), or whose connection drops and then leaves the
   * registry (a crash), is reported at the first sign only, until it is connected or listed again.
   */
  onProviderLost(listener: (providerKey: string) => void): void {
    this.lostListeners.push(listener);
  }

  private providerLost(key: string): void {
    if (this.lostReported.has(key)) return;
    this.lostReported.add(key);
    for (const listener of this.lostListeners) listener(key);
  }

  /** Fails every pending call with CANCELLED and closes connections and the ZooKeeper session. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new RpcError('CANCELLED', 'channel closed');
    for (const ep of this.endpoints.values()) ep.connection?.close(error);
    for (const route of this.routes.values()) {
      for (const call of route.waiting) this.settle(call, error);
      route.waiting = [];
    }
    for (const call of this.deadlines.clear()) this.settle(call, error);
    await this.zk?.close();
  }

  // ---- ConnectionOwner ----

  callSucceeded(call: PendingCall, response: object): void {
    if (call.state === CallState.Done) return;
    call.state = CallState.Done;
    this.pending--;
    this.deadlines.remove(call);
    call.resolve(response);
  }

  callFailed(call: PendingCall, error: RpcError): void {
    if (call.state === CallState.Done) return;
    call.state = CallState.Queued;
    call.holder = null;
    call.lastError = error;
    if (this.mayRetry(call, error)) this.dispatch(call);
    else this.settle(call, error);
  }

  connectionChanged(conn: NativeConnection, error: RpcError | null): void {
    const ep = this.endpoints.get(conn.key);
    if (ep === undefined || ep.connection !== conn) return;
    if (conn.state === 'ready') {
      ep.markUp();
      this.lostReported.delete(conn.key);
    } else if (conn.state === 'draining' || conn.state === 'closed') {
      ep.connection = null;
      if (!this.closed && (error !== null || conn.state === 'draining')) {
        ep.markDown(performance.now(), this.backoff);
        this.providerLost(conn.key);
      }
    }
  }

  // ---- internals ----

  private mayRetry(call: PendingCall, error: RpcError): boolean {
    return (
      !this.closed &&
      error.code === 'UNAVAILABLE' &&
      (!error.mayHaveExecuted || call.idempotent) &&
      call.attempts < this.maxAttempts &&
      performance.now() < call.deadline
    );
  }

  private settle(call: PendingCall, error: RpcError): void {
    if (call.state === CallState.Done) return;
    call.state = CallState.Done;
    this.pending--;
    this.deadlines.remove(call);
    call.holder?.forget(call);
    call.holder = null;
    call.controller?.setFailed(error);
    call.reject(error);
  }

  private readonly expire = (call: PendingCall): void => {
    const where = call.attempts === 0 ? ' (no provider list yet)' : '';
    this.settle(
      call,
      new RpcError('DEADLINE_EXCEEDED', `${call.method.fullName}: deadline exceeded${where}`, {
        mayHaveExecuted: call.attempts > 0,
      }),
    );
  };

  private dispatch(call: PendingCall, now = performance.now()): void {
    const route = this.route(call.method.serviceName);
    if (!route.known) {
      if (call.snapshot()) route.waiting.push(call);
      else this.settle(call, call.lastError!);
      return;
    }
    const ep =
      (call.affinity === null
        ? pickEndpoint(route.endpoints, now, route.next++, call.lastEndpoint)
        : pickByAffinity(route.endpoints, now, call.affinity, call.lastEndpoint)) ??
      this.pickUnlisted(route, now);
    if (ep === null) {
      const why =
        route.endpoints.length === 0
          ? 'no provider registered'
          : `all ${route.endpoints.length} providers unreachable`;
      // After an attempt that may have run, that failure is the truthful answer.
      const last = call.lastError;
      this.settle(
        call,
        last?.mayHaveExecuted
          ? last
          : new RpcError('UNAVAILABLE', `${call.method.serviceName}: ${why}`, {
              mayHaveExecuted: false,
              cause: last ?? undefined,
            }),
      );
      return;
    }
    call.attempts++;
    call.lastEndpoint = ep;
    let conn = ep.connection;
    if (conn === null) {
      conn = new NativeConnection(ep.key, ep.host, ep.port, this, this.connectionOptions);
      ep.connection = conn;
    }
    call.holder = conn;
    conn.send(call, now);
  }

  private pickUnlisted(route: Route, now: number): Endpoint | null {
    if (route.unlisted.length === 0) return null;
    route.unlisted = route.unlisted.filter((u) => u.until > now && u.ep.connection?.state === 'ready');
    return pickEndpoint(
      route.unlisted.map((u) => u.ep),
      now,
      0,
      null,
    );
  }

  private route(service: string): Route {
    let route = this.routes.get(service);
    if (route === undefined) {
      route = { service, endpoints: [], unlisted: [], known: false, waiting: [], next: 0 };
      this.routes.set(service, route);
      if (this.staticEndpoints !== null) {
        route.endpoints = this.staticEndpoints;
        route.known = true;
      } else {
        this.directory!.watch(service);
        const cached = this.directory!.providers(service);
        if (cached !== undefined) this.onProviders(service, cached);
      }
    }
    return route;
  }

  private endpoint(key: string, host: string, port: number): Endpoint {
    let ep = this.endpoints.get(key);
    if (ep === undefined) {
      ep = new Endpoint(key, host, port);
      this.endpoints.set(key, ep);
    }
    return ep;
  }

  private readonly onProviders = (service: string, providers: readonly ProviderInfo[]): void => {
    const route = this.routes.get(service);
    if (route === undefined || this.closed) return;
    const previous = route.endpoints;
    route.endpoints = providers.map((info) => {
      const ep = this.endpoint(info.key, info.host, info.port);
      if (!previous.includes(ep)) this.lostReported.delete(ep.key); // listed again: a new loss counts
      ep.reportedLoad = info.load;
      return ep;
    });
    const listed = new Set(route.endpoints);
    const until = performance.now() + this.unlistedGraceMs;
    route.unlisted = route.unlisted.filter((u) => !listed.has(u.ep));
    for (const ep of previous) {
      if (listed.has(ep)) continue;
      if (ep.connection?.state === 'ready') route.unlisted.push({ ep, until });
      this.providerLost(ep.key);
    }
    route.known = true;
    const waiting = route.waiting;
    route.waiting = [];
    for (const call of waiting) if (call.state !== CallState.Done) this.dispatch(call);
  };
}

function failEarly<T>(controller: RpcController | null, error: RpcError): Promise<T> {
  controller?.setFailed(error);
  return Promise.reject(error);
}

// One executor for every call's promise (no closure per call): it hands out the settle functions.
let capturedResolve: (value: never) => void = () => {};
let capturedReject: (error: RpcError) => void = () => {};
function capture(resolve: (value: never) => void, reject: (error: RpcError) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** The earlier of `timeoutMs` (or the default) and `deadline`, on the performance.now() clock. */
function deadlineOf(options: CallOptions | undefined, now: number, defaultTimeoutMs: number): number {
  const timeout = options?.timeoutMs ?? defaultTimeoutMs;
  let deadline = now + timeout;
  if (options?.deadline !== undefined) deadline = Math.min(deadline, now + (options.deadline - Date.now()));
  return deadline;
}
