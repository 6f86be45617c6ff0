/** The types user code sees: service shapes, stubs, implementations and per-call options. */
import type { RpcController } from './RpcController.js';

/** One method's request and response (plain objects or protobufjs messages of the .proto types). */
export interface MethodTypes<Req extends object = object, Res extends object = object> {
  request: Req;
  response: Res;
}

/**
 * A service's methods by name, e.g.
 *   interface UserService { Login: MethodTypes<LoginRequest, LoginResponse> }
 */
export type ServiceShape<S> = { [K in keyof S]: MethodTypes };

/** The shape used when none is given: any method, object in, object out. */
export type UntypedService = Record<string, MethodTypes<Record<string, unknown>, Record<string, unknown>>>;

export type RequestOf<M> = M extends MethodTypes<infer Req, object> ? Req : never;
export type ResponseOf<M> = M extends MethodTypes<object, infer Res> ? Res : never;

export interface CallOptions {
  /**
   * Time allowed for the call, retries included, in ms. Default: the channel's
   * `defaultTimeoutMs` (5000). `Infinity` means no deadline; 0 or less fails at once.
   */
  timeoutMs?: number;
  /** Absolute deadline as epoch ms (`Date.now()` clock). The earlier of this and `timeoutMs` wins. */
  deadline?: number;
  /** Overrides the method's idempotency (which decides retries) for this call. */
  idempotent?: boolean;
  /**
   * Calls with the same affinity key go to the same provider while it is usable, instead of
   * the least loaded: the highest rendezvous hash of (key, provider) among the listed
   * providers, so a key moves only when its provider leaves or fails (a retry takes the next
   * in that key's order). E.g. a sender's id, so that its calls stay in order on one provider.
   * Default none (least loaded).
   */
  affinity?: string;
}

/** A typed client for one service: one async function per method. */
export type Stub<S extends ServiceShape<S> = UntypedService> = {
  readonly [K in keyof S]: (
    request: RequestOf<S[K]>,
    options?: CallOptions | RpcController,
  ) => Promise<ResponseOf<S[K]>>;
};

/** What a handler learns about its call. */
export interface CallContext {
  /** Full service name ("fixbug.UserServiceRpc"). */
  readonly service: string;
  readonly method: string;
  /** Which wire format the call came in on. */
  readonly protocol: 'native' | 'classic';
  /** The caller's "ip:port". */
  readonly peer: string;
  /** `performance.now()` time after which nobody waits for the answer; Infinity when none. */
  readonly deadline: number;
  /** Milliseconds left before the deadline (Infinity when none, 0 when passed). */
  remainingMs(): number;
}

/** A handler may answer synchronously or with a promise; a throw or rejection is a HANDLER_ERROR. */
export type Handler<Req extends object = object, Res extends object = object> = (
  request: Req,
  context: CallContext,
) => Res | Promise<Res>;

/** A service implementation: one handler per method of the .proto service. */
export type ServiceImpl<S extends ServiceShape<S> = UntypedService> = {
  readonly [K in keyof S]: Handler<RequestOf<S[K]>, ResponseOf<S[K]>>;
};
