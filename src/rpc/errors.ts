/**
 * Every way an RPC can fail, as a code the caller can switch on. A call either resolves with a
 * decoded response or rejects with an RpcError: never a hang (deadlines) and never an empty success.
 */
export type RpcErrorCode =
  /** The provider does not serve that service (native), or ZooKeeper has no such service (classic). */
  | 'UNKNOWN_SERVICE'
  /** The provider serves the service but not that method. */
  | 'UNKNOWN_METHOD'
  /** The request failed verification before sending, or the provider could not decode it. */
  | 'BAD_REQUEST'
  /** The provider's handler threw (or returned something that does not encode). */
  | 'HANDLER_ERROR'
  /** The deadline passed before a response arrived. */
  | 'DEADLINE_EXCEEDED'
  /** No provider could be reached, or the connection was lost with the call in flight. */
  | 'UNAVAILABLE'
  /** A local limit (queued calls) was hit; the call was not sent. */
  | 'RESOURCE_EXHAUSTED'
  /** The response did not decode as the method's response type. */
  | 'BAD_RESPONSE'
  /** The peer broke the wire format. */
  | 'PROTOCOL_ERROR'
  /** The channel was closed by its owner before the call finished. */
  | 'CANCELLED'
  /** A configuration file or options object is invalid. */
  | 'CONFIG_ERROR';

export interface RpcErrorOptions {
  cause?: unknown;
  /**
   * False when the provider certainly did not run the handler (connect failed, provider draining):
   * such a call may be retried even when the method is not idempotent. Default true.
   */
  mayHaveExecuted?: boolean;
}

export class RpcError extends Error {
  readonly mayHaveExecuted: boolean;

  constructor(
    readonly code: RpcErrorCode,
    message: string,
    options: RpcErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RpcError';
    this.mayHaveExecuted = options.mayHaveExecuted ?? true;
  }
}

export function isRpcError(value: unknown): value is RpcError {
  return value instanceof RpcError;
}
