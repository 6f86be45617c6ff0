/**
 * The classic RpcController, as an options object: carries the deadline in, and the failure and
 * its text out. Pass it as a stub call's options; after the call settles, `failed()` and
 * `errorText()` tell what happened (the returned promise rejects with the same RpcError).
 */
import type { RpcError, RpcErrorCode } from './errors.js';
import type { CallOptions } from './types.js';

export class RpcController implements CallOptions {
  timeoutMs?: number;
  deadline?: number;
  idempotent?: boolean;
  private failure: RpcError | null = null;

  constructor(options: CallOptions = {}) {
    this.timeoutMs = options.timeoutMs;
    this.deadline = options.deadline;
    this.idempotent = options.idempotent;
  }

  failed(): boolean {
    return this.failure !== null;
  }

  /** The failure's message, '' when the call succeeded (or has not finished). */
  errorText(): string {
    return this.failure?.message ?? '';
  }

  errorCode(): RpcErrorCode | null {
    return this.failure?.code ?? null;
  }

  get error(): RpcError | null {
    return this.failure;
  }

  /** Clears the outcome so the controller can serve another call. */
  reset(): void {
    this.failure = null;
  }

  /** Records the failure (called by the channel). */
  setFailed(error: RpcError): void {
    this.failure = error;
  }
}
